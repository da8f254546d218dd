-- lease.lua: extend or release a lease.
-- KEYS[1]  the partition's seq key (routing)
-- ARGV[1]  prefix; ARGV[2] unit; ARGV[3] lease token; ARGV[4] "extend"
--          or "release"; ARGV[5] the new expiry (ms) for extend
-- Returns "ok" or "lost".
local unit = ARGV[2]
local token = leaseOf(unit)
if token == nil or token ~= ARGV[3] then return "lost" end
local _, id = parseUnit(unit)
if ARGV[4] == "extend" then
  call("ZADD", P .. "leases", ARGV[5], unit)
  if call("GET", lockKey(id)) == token then call("PEXPIREAT", lockKey(id), ARGV[5]) end
else
  unlock(id, token)
  giveBack(unit)
end
return done()
