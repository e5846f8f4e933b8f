-- Take the parked jobs whose wait is over, atomically, so that two sweeps
-- never resume the same job twice.
-- KEYS[1] parked set (member 'step|key|opportunityId', score resume ms)
-- ARGV[1] now_ms, ARGV[2] most entries to take
-- Returns the members taken.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
