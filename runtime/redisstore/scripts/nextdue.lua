-- nextdue.lua: the earliest due time (ms) of a partition's work, or of
-- an expiring lease; -1 for none.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix
local best = -1
local function consider(key)
  local first = redis.call("ZRANGE", key, "0", "0", "WITHSCORES")
  if #first > 0 then
    local t = tonumber(first[2])
    if best < 0 or t < best then best = t end
  end
end
for prio = 0, tonumber(redis.call("GET", P .. "top") or "0") do consider(ready(PRIO[prio])) end
consider(P .. "leases")
return best
