-- commit.lua: the fenced commit of one item of instance work, of an
-- operator's update (ARGV[3] empty: no lease), or of a task attempt
-- that delivers its result directly (a "t|" unit): that one commits
-- only when no instance work of the instance is due by ARGV[12] or
-- leased, and (with ARGV[14] = "1") nobody holds the instance's Redlock
-- (its key P.."lock:"..id), and otherwise returns "busy", having written
-- nothing.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] id; ARGV[3] unit ("" for an update);
-- ARGV[4]  lease token; ARGV[5] the version read; ARGV[6] status;
-- ARGV[7]  priority; ARGV[8] drop work ("1": the instance has ended;
--          "2": only its queued timers, as it entered a state);
-- ARGV[9..11] d, c, f (see writeData); ARGV[12] the result's due time
--          (ms) for a task unit; ARGV[13] the new version; ARGV[14]
--          check the Redlock ("1"); ARGV[15..] history, cap, work,
--          changes (see applyLists), then optionally the worker's next
--          claim (see chain)
-- Returns "ok" or "ready" (with a claim, {that, the claim's answer}),
-- "stale" (the version moved on; nothing written), "busy", "lost" (the
-- lease is gone) or "notfound".
local id, unit = ARGV[2], ARGV[3]
local inst = load(id)
if not inst then return "notfound" end
local token, member
if unit ~= "" then
  token, member = leaseOf(unit)
  if token == nil or token ~= ARGV[4] then return "lost" end
end
if inst.f.v ~= ARGV[5] then return "stale" end
-- free: the instance's "q|" unit is neither leased nor ready (see
-- reschedule): this commit held its lease, or, for a task unit, the
-- instance has no instance work and nobody leases it.
local kind = byte(unit) -- BYTE_Q, BYTE_T, or none for an update
local free = kind == BYTE_Q
if kind == BYTE_T then
  local first, due = head(inst)
  if due and due <= tonumber(ARGV[12]) then return "busy" end
  -- Instance work under a lease is in the hash until the lease's
  -- commit removes it, so an instance without any has none leased.
  if first and call("ZSCORE", K.leases, "q|" .. id) then return "busy" end
  if ARGV[14] == "1" and call("EXISTS", lockKey(id)) == 1 then return "busy" end
  free = first == nil
end
if unit ~= "" then
  finish(inst, unit, member)
  if kind == BYTE_Q then unlock(id, token) end
end
put(inst, "v", ARGV[13])
put(inst, "st", ARGV[6])
put(inst, "pr", ARGV[7])
writeData(inst, 9)
if ARGV[8] == "1" then dropAll(inst) elseif ARGV[8] == "2" then dropTimers(inst) end
local i = applyLists(inst, 15)
save(inst)
if ARGV[8] == "1" then expireEnded(inst.key) end
reschedule(inst, free)
return chain(i)
