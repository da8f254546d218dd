-- nextdue.lua: the earliest due time (ms) of work a worker may claim,
-- or of an expiring lease; -1 for none (see nextDue).
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] allowed machine ids, "\n"-separated, or "*";
-- ARGV[3]  runnable actions as "id#action" lines, or "*"
return nextDue(ARGV[2], ARGV[3])
