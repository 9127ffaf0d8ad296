/**
 * Every environment variable Warden reads, named in one place. Most map onto a
 * config key (dotted path); a flag beats the variable, which beats the file.
 */
export const CONFIG_ENV = {
  dataDir: "WARDEN_DATA_DIR",
  runDir: "WARDEN_RUN_DIR",
  logLevel: "WARDEN_LOG_LEVEL",
  defaultTimeout: "WARDEN_DEFAULT_TIMEOUT",
  maxTimeout: "WARDEN_MAX_TIMEOUT",
  killGracePeriod: "WARDEN_KILL_GRACE_PERIOD",
  maxCpuPercent: "WARDEN_MAX_CPU_PERCENT",
  maxMemoryMB: "WARDEN_MAX_MEMORY_MB",
  maxDiskMB: "WARDEN_MAX_DISK_MB",
  maxConcurrentSandboxes: "WARDEN_MAX_CONCURRENT_SANDBOXES",
  maxSandboxesPerUser: "WARDEN_MAX_SANDBOXES_PER_USER",
  maxQueueSize: "WARDEN_MAX_QUEUE_SIZE",
  queueTimeout: "WARDEN_QUEUE_TIMEOUT",
  memoryBudgetMB: "WARDEN_MEMORY_BUDGET_MB",
  memoryBudgetMode: "WARDEN_MEMORY_BUDGET_MODE",
  retentionDays: "WARDEN_RETENTION_DAYS",
  "policy.mode": "WARDEN_POLICY_MODE",
  "server.host": "WARDEN_HOST",
  "server.port": "WARDEN_PORT",
  "server.pistonAnonymous": "WARDEN_PISTON_ANONYMOUS",
  "sandbox.bwrapPath": "WARDEN_BWRAP",
  "sandbox.nativeDir": "WARDEN_NATIVE_DIR",
  "sandbox.uidBase": "WARDEN_UID_BASE",
  "sandbox.uidCount": "WARDEN_UID_COUNT",
  "sandbox.cgroupParent": "WARDEN_CGROUP_PARENT",
  "sandbox.pool.enabled": "WARDEN_POOL",
  "cluster.role": "WARDEN_ROLE",
  "cluster.databaseUrl": "WARDEN_DATABASE_URL",
  "cluster.redisUrl": "WARDEN_REDIS_URL",
  "cluster.secret": "WARDEN_CLUSTER_SECRET",
  "cluster.workerId": "WARDEN_WORKER_ID",
} as const;

/** Variables that are not config keys. */
export const ENV = {
  /** Path of a JSON config file. */
  config: "WARDEN_CONFIG",
  /** Admin token to accept (for automation and tests) instead of generating one. */
  adminToken: "WARDEN_ADMIN_TOKEN",
} as const;
