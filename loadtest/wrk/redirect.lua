-- wrk script: GET /{code} with a random code per request from codes.txt (one per line).
local codes = {}
local path = os.getenv("CODES_FILE") or "codes.txt"
for line in io.lines(path) do codes[#codes + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/" .. codes[math.random(#codes)])
end
