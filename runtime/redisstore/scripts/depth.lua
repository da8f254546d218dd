-- depth.lua: what one partition's queue holds (runtime.QueueStats).
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] now (ms)
-- Returns {units waiting, units due by now, the earliest due time of
-- those (ms; -1 when none is due), units leased}.
local now = tonumber(ARGV[2])
local waiting, due, oldest = 0, 0, -1
for prio = 0, tonumber(call("GET", K.top) or "0") do
  -- The ready sets of the priority's classes, and the one an earlier
  -- build kept (see migrate.lua), while there is one.
  local keys = {P .. "ready:" .. PRIO[prio]}
  for _, class in ipairs(call("ZRANGE", classes(PRIO[prio]), "0", "-1")) do
    keys[#keys + 1] = ready(PRIO[prio], class)
  end
  for _, key in ipairs(keys) do
    waiting = waiting + call("ZCARD", key)
    due = due + call("ZCOUNT", key, "-inf", ARGV[2])
    local first = call("ZRANGE", key, "0", "0", "WITHSCORES")
    if #first > 0 then
      local t = tonumber(first[2])
      if t <= now and (oldest < 0 or t < oldest) then oldest = t end
    end
  end
end
return {waiting, due, oldest, call("ZCOUNT", K.leases, "-inf", "(+inf")}
