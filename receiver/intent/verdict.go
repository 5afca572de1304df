package intent

// Refusals the incident engine gives when an open incident's verdict says
// a scale-up would not help or would hurt; each names the verdict.
const (
	RefuseVerdictDatabaseSlowQuery     Refusal = "verdict_database_slow_query"     // workers wait on a slow query: more would run more of it
	RefuseVerdictDatabaseLock          Refusal = "verdict_database_lock"           // workers wait on a lock: more would queue behind it
	RefuseVerdictDatabasePoolExhausted Refusal = "verdict_database_pool_exhausted" // the pool or PostgreSQL is out of connections
	RefuseVerdictMemoryOOM             Refusal = "verdict_memory_oom"              // workers are OOM-killed: more need more memory
	RefuseVerdictDeployRegression      Refusal = "verdict_deploy_regression"       // a deploy made requests slow: roll it back
	RefuseVerdictCPUBound              Refusal = "verdict_cpu_bound"               // CPU-bound requests on a saturated host
)
