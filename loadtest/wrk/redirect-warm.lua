-- wrk script: GET /{code} for every code of codes.txt in turn (the warm-up before a measured run,
-- so that both servers are measured with every code in memory).
local codes = {}
local path = os.getenv("CODES_FILE") or "codes.txt"
for line in io.lines(path) do codes[#codes + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/" .. codes[(i % #codes) + 1])
end
