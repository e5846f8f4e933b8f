-- Count a task run that ended (see Ledger.begin_run).
-- KEYS[1] job hash
-- ARGV[1] the run counter's field (one per step)
-- Returns the runs still unfinished; a purged job is left alone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
