-- wrk script: POST /api/v1/links with a new target per request; the key comes from API_KEY.
local key = os.getenv("API_KEY")
local n = 0
local thread_id = 0
setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
request = function()
  n = n + 1
  local body = '{"url":"https://example.com/load/' .. thread_id .. '/' .. n .. '"}'
  return wrk.format("POST", "/api/v1/links",
    { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }, body)
end
