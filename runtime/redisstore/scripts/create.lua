-- create.lua: create an instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] status; ARGV[4] priority;
-- ARGV[5]  machine hash; ARGV[6] data JSON; ARGV[7..] history, cap, work,
--          changes (see applyLists)
-- Returns "ok" or "exists".
local id = ARGV[2]
if redis.call("EXISTS", ik("i", id)) == 1 then return "exists" end
redis.call("HSET", ik("i", id), "v", 1, "st", ARGV[3], "pr", ARGV[4], "h", ARGV[5], "d", ARGV[6])
applyLists(id, 7)
reschedule(id)
return "ok"
