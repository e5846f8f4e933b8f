-- Count a task run that has started (see Ledger.begin_run).
-- KEYS[1] job hash
-- ARGV[1] the run counter's field (one per step)
-- Returns the runs started but not ended, or -1 for an unknown job (a
-- message that outlived its job must not create a stub record).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
