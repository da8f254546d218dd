-- commit.lua: the fenced commit of one item of instance work, or an
-- operator's update (ARGV[3] empty: no lease).
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] unit ("" for an update);
-- ARGV[4]  lease token; ARGV[5] the version read; ARGV[6] status;
-- ARGV[7]  priority; ARGV[8] drop work ("1"); ARGV[9..11] d, c, f (see
--          writeData); ARGV[12..] history, cap, work, changes (see applyLists)
-- Returns "ok", "stale" (the version moved on; nothing written),
-- "lost" (the lease is gone) or "notfound".
local id, unit = ARGV[2], ARGV[3]
local inst = ik(id)
if redis.call("EXISTS", inst) == 0 then return "notfound" end
if unit ~= "" and not holds(unit, ARGV[4]) then return "lost" end
local version = tonumber(redis.call("HGET", inst, "v"))
if version ~= tonumber(ARGV[5]) then return "stale" end
if unit ~= "" then finish(unit) end
local oldPrio = prioOf(id)
redis.call("ZREM", ready(oldPrio), "q|" .. id)
redis.call("HSET", inst, "v", version + 1, "st", ARGV[6], "pr", ARGV[7])
writeData(id, 9)
if ARGV[8] == "1" then dropAll(id) end
applyLists(id, 12)
reschedule(id)
return "ok"
