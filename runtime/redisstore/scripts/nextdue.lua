-- nextdue.lua: the earliest due time (ms) of work a worker may claim,
-- or of an expiring lease; -1 for none. Work the worker cannot take (a
-- parked instance's, another worker's actions) does not count, or the
-- worker would wake for it again and again. Each ready set is read in
-- due order a few units at a time, as a claim reads it, up to 100.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] allowed machine ids, "\n"-separated, or "*";
-- ARGV[3]  runnable actions as "id#action" lines, or "*"
local best = -1
local function consider(t)
  t = tonumber(t)
  if best < 0 or t < best then best = t end
end
for prio = 0, tonumber(call("GET", P .. "top") or "0") do
  local key = ready(PRIO[prio])
  for page = 0, 24 do
    local from, to = "0", "3"
    if page > 0 then from, to = page * 4, page * 4 + 3 end
    local units = call("ZRANGE", key, from, to, "WITHSCORES")
    local found = false
    for k = 1, #units, 2 do
      if claimable(units[k], ARGV[2], ARGV[3]) then
        consider(units[k + 1])
        found = true
        break
      end
    end
    if found or #units < 8 then break end
  end
end
local first = call("ZRANGE", P .. "leases", "0", "0", "WITHSCORES")
if #first > 0 then consider(first[2]) end
return best
