-- Record the opportunity a job created or adopted; first writer wins.
-- KEYS[1] job hash, KEYS[2] state counts
-- ARGV[1] opportunity id, ARGV[2] now_ms, ARGV[3] how ('posted' or 'adopted')
-- Returns the recorded opportunity id (the earlier one if already set).
local known = redis.call('HGET', KEYS[1], 'opportunityId')
if known then return known end
redis.call('HSET', KEYS[1], 'opportunityId', ARGV[1], 'createdVia', ARGV[3])
redis.call('HDEL', KEYS[1], 'leaseHolder', 'leaseUntil', 'createPending')
move(KEYS[1], KEYS[2], 'created', ARGV[2])
return ARGV[1]
