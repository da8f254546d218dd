-- enqueue.lua: add work for an existing instance.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] kind; ARGV[4] action; ARGV[5] due
--          (ms); ARGV[6] work value
-- Returns "ok" or "notfound".
local id = ARGV[2]
if redis.call("EXISTS", ik(id)) == 0 then return "notfound" end
addWork(id, ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6])
reschedule(id)
return "ok"
