-- lease.lua: extend or release a lease, or give back what a claim took.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] unit; ARGV[3] lease token; ARGV[4] "extend"
--          or "release"; ARGV[5] the new expiry (ms) for extend
-- or, with ARGV[4] "abandon", ARGV[2] the id of a claim whose reply was
-- lost: every lease it took is given back (its holder never learnt of it).
-- Returns "ok" or "lost" ("none": the claim took nothing, or it was
-- given back already).
if ARGV[4] == "abandon" then
  -- The claim's id is the token of the lease it took (see lease).
  local claim = ARGV[2] .. "|"
  local entries = call("HGETALL", K.tokens)
  local found = false
  for k = 1, #entries, 2 do
    local v = entries[k + 1]
    if sub(v, 1, #claim) == claim then
      local unit = entries[k]
      local _, id = parseUnit(unit)
      unlock(id, ARGV[2])
      giveBack(unit)
      found = true
    end
  end
  if not found then return "none" end
  return done()
end
local unit = ARGV[2]
local token = leaseOf(unit)
if token == nil or token ~= ARGV[3] then return "lost" end
local _, id = parseUnit(unit)
if ARGV[4] == "extend" then
  call("ZADD", K.leases, ARGV[5], unit)
  if call("GET", lockKey(id)) == token then call("PEXPIREAT", lockKey(id), ARGV[5]) end
else
  unlock(id, token)
  giveBack(unit)
end
return done()
