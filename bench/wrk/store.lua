-- wrk script for the task-store worker API (ours and Airflow's, same wire format) and the floor.
-- Parameters come from the environment (wrk passes no arguments to setup code we can rely on):
--   OP      put | put_hot | get | delete | clear | mixed | asset_put | asset_get | floor
--   TOKEN   bearer token;  TI  task instance UUID;  BASE  path prefix (default /execution)
--   PREFIX  key prefix (distinct per run);  START  first key number (default 0)
--   SEEDED  for delete: keys PREFIX-0 .. PREFIX-(SEEDED-1) exist; requests past that are counted as misses
--   ASSET   for asset_*: the asset's name, percent-encoded for the query string
--   SERVICE for service_*: the path of a task instance's keys by identity (/api/v2/service/tasks/D/R/T/keys/);
--           TOKEN is then an API key (service role or admin)
-- Every response's status is counted (response() below); done() prints one JSON line prefixed "WRKJSON ".
local op = os.getenv("OP") or "get"
local token = os.getenv("TOKEN") or ""
local base = os.getenv("BASE") or "/execution"
local ti = os.getenv("TI") or ""
local prefix = os.getenv("PREFIX") or "k"
local n = tonumber(os.getenv("START") or "0")
local seeded = tonumber(os.getenv("SEEDED") or "-1")
local store = base .. "/store/ti/" .. ti .. "/"
local clear_path = base .. "/store/ti/" .. ti
local asset_value = base .. "/store/asset/by-name/value?name=" .. (os.getenv("ASSET") or "") .. "&key="
local service = os.getenv("SERVICE") or ""
local filler = string.rep("x", 32)
-- The headers Airflow's Task SDK client sends (no correlation-id: it adds nothing server-side here).
local function hdrs(with_body)
  local h = { ["Authorization"] = "Bearer " .. token, ["airflow-api-version"] = "2026-06-30",
              ["Accept"] = "application/json" }
  if with_body then h["Content-Type"] = "application/json" end
  return h
end
local function body(i)
  return '{"value":{"i":' .. i .. ',"s":"' .. filler .. '"},"expires_at":null}'
end
local function service_body(i)  -- the value as JSON text, as Airflow's storage backend relays it
  return '{"value_json":"{\\"i\\":' .. i .. ',\\"s\\":\\"' .. filler .. '\\"}","expires_at":null}'
end
local function asset_body(i)  -- asset keys never expire: the body holds the value only
  return '{"value":{"i":' .. i .. ',"s":"' .. filler .. '"}}'
end

statuses = {}
issued = 0
misses = 0

request = function()
  local i = n
  n = n + 1
  issued = issued + 1
  if op == "put" then
    return wrk.format("PUT", store .. prefix .. "-" .. i, hdrs(true), body(i))
  elseif op == "put_hot" then
    return wrk.format("PUT", store .. prefix .. "-hot", hdrs(true), body(i))
  elseif op == "get" then
    return wrk.format("GET", store .. prefix .. "-hot", hdrs(false))
  elseif op == "delete" then
    if seeded >= 0 and i >= seeded then misses = misses + 1 end
    return wrk.format("DELETE", store .. prefix .. "-" .. i, hdrs(false))
  elseif op == "asset_put" then
    return wrk.format("PUT", asset_value .. prefix .. "-" .. i, hdrs(true), asset_body(i))
  elseif op == "asset_get" then
    return wrk.format("GET", asset_value .. prefix .. "-hot", hdrs(false))
  elseif op == "service_put" then
    return wrk.format("PUT", service .. prefix .. "-" .. i, hdrs(true), service_body(i))
  elseif op == "service_get" then
    return wrk.format("GET", service .. prefix .. "-hot", hdrs(false))
  elseif op == "clear" then
    return wrk.format("DELETE", clear_path, hdrs(false))
  elseif op == "mixed" then
    -- one worker session = 4 requests: get job id -> set checkpoint -> set progress -> get config
    local s, step = math.floor(i / 4), i % 4
    if step == 0 then
      return wrk.format("GET", store .. prefix .. "-job", hdrs(false))
    elseif step == 1 then
      return wrk.format("PUT", store .. prefix .. "-" .. s .. "-ckpt", hdrs(true), body(i))
    elseif step == 2 then
      return wrk.format("PUT", store .. prefix .. "-" .. s .. "-progress", hdrs(true), body(i))
    else
      return wrk.format("GET", store .. prefix .. "-config", hdrs(false))
    end
  else -- floor
    return wrk.format("GET", "/floor", hdrs(false))
  end
end

response = function(status, headers, resp_body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local st, iss, miss = {}, 0, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s) do st[code] = (st[code] or 0) + count end
    iss = iss + (t:get("issued") or 0)
    miss = miss + (t:get("misses") or 0)
  end
  local parts = {}
  for code, count in pairs(st) do table.insert(parts, string.format('"%d":%d', code, count)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"issued":%d,"misses":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    iss, miss, table.concat(parts, ",")))
end
