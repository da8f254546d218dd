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
local inst = load(id)
if not inst then return "notfound" end
local token, member
if unit ~= "" then
  token, member = leaseOf(unit)
  if token == nil or token ~= ARGV[4] then return "lost" end
end
local version = tonumber(inst.f.v)
if version ~= tonumber(ARGV[5]) then return "stale" end
if unit ~= "" then finish(inst, unit, member) end
put(inst, "v", tostring(version + 1))
put(inst, "st", ARGV[6])
put(inst, "pr", ARGV[7])
writeData(inst, 9)
if ARGV[8] == "1" then dropAll(inst) end
applyLists(inst, 12)
save(inst)
reschedule(inst, string.sub(unit, 1, 2) == "q|")
return "ok"
