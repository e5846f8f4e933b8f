-- Record that a create is about to be sent; the gate before every POST.
-- KEYS[1] job hash
-- ARGV[1] holder id, ARGV[2] now_ms
-- Returns 1 when the holder may send, 0 when it lost the lease or an
-- opportunity is already recorded.
if not holds_lease(KEYS[1], ARGV[1]) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'opportunityId') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'createPending', 1, 'lastSentAt', ARGV[2])
redis.call('HSETNX', KEYS[1], 'firstSentAt', ARGV[2])
return 1
