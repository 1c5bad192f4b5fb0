// Every metric a CodeRL process records, in one place: its Prometheus name, by kind, so that a
// name cannot be misspelt at a call site nor recorded as two kinds. Operations.md lists each
// with its role and meaning (a test checks that the two agree); a name appears in product code
// only here.

/// A count that only grows (Prometheus counter; `Telemetry.count`).
public enum CounterMetric: String, CaseIterable, Sendable {
    case executionInfrastructureErrors = "coderl_execution_infrastructure_errors_total"
    case executionLeasesExpired = "coderl_execution_leases_expired_total"
    case executionParked = "coderl_execution_parked_total"
    case executions = "coderl_executions_total"
    case executorInfrastructureErrors = "coderl_executor_infrastructure_errors_total"
    case executorJobs = "coderl_executor_jobs_total"
    case outcomes = "coderl_outcomes_total"
    case rolloutsConsumed = "coderl_rollouts_consumed_total"
    case rolloutsLabeled = "coderl_rollouts_labeled_total"
    case rolloutsReceived = "coderl_rollouts_received_total"
    case rolloutsStale = "coderl_rollouts_stale_total"
    case samplerPrograms = "coderl_sampler_programs_total"
    case samplerTokens = "coderl_sampler_tokens_total"
    case verdictCacheHits = "coderl_verdict_cache_hits_total"
    case weightBytesServed = "coderl_weight_bytes_served_total"
    case weightChunksServed = "coderl_weight_chunks_served_total"
    case weightFetchBytes = "coderl_weight_fetch_bytes_total"
    case weightReusedBytes = "coderl_weight_reused_bytes_total"
}

/// A value set to the latest (Prometheus gauge; `Telemetry.gauge`).
public enum GaugeMetric: String, CaseIterable, Sendable {
    case actorVersion = "coderl_actor_version"
    case criticAccuracy = "coderl_critic_accuracy"
    case criticCalibrationError = "coderl_critic_calibration_error"
    case cutOffShare = "coderl_cut_off_share"
    case evalExecutions = "coderl_eval_executions"
    case evalProblemsDone = "coderl_eval_problems_done"
    case evalPrograms = "coderl_eval_programs"
    case executionJobsInFlight = "coderl_execution_jobs_in_flight"
    case executionQueueDepth = "coderl_execution_queue_depth"
    case executionsPerSecond = "coderl_executions_per_second"
    case executorSlotsBusy = "coderl_executor_slots_busy"
    case executorsConnected = "coderl_executors_connected"
    case gradientNorm = "coderl_gradient_norm"
    case gradientNormTerm = "coderl_gradient_norm_term"
    case klToStart = "coderl_kl_to_start"
    case learnerStep = "coderl_learner_step"
    case learningRate = "coderl_learning_rate"
    case ledgerBytes = "coderl_ledger_bytes"
    case loss = "coderl_loss"
    case meanAbsReturn = "coderl_mean_abs_return"
    case passRate = "coderl_pass_rate"
    case policyLagMean = "coderl_policy_lag_mean"
    case programTokensMean = "coderl_program_tokens_mean"
    case rewardMean = "coderl_reward_mean"
    case rolloutsPerSecond = "coderl_rollouts_per_second"
    case rolloutsUnlabeled = "coderl_rollouts_unlabeled"
    case sampleRequests = "coderl_sample_requests"
    case samplerBatchSequences = "coderl_sampler_batch_sequences"
    case samplerTokensPerSecond = "coderl_sampler_tokens_per_second"
    case samplersConnected = "coderl_samplers_connected"
    case signalShare = "coderl_signal_share"
    case weightNewestVersion = "coderl_weight_newest_version"
}

/// Durations in seconds (Prometheus histogram; `Telemetry.seconds`).
public enum DurationMetric: String, CaseIterable, Sendable {
    /// The histogram's sum and count series in the exposition, with `labels` as Prometheus
    /// writes them (`name_sum{model="actor"}`).
    public func sum(_ labels: [(String, String)] = []) -> String { Self.series(rawValue + "_sum", labels) }
    public func count(_ labels: [(String, String)] = []) -> String { Self.series(rawValue + "_count", labels) }

    static func series(_ name: String, _ labels: [(String, String)]) -> String {
        labels.isEmpty ? name : name + "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    }

    case checkpointSeconds = "coderl_checkpoint_seconds"
    case checkpointWriteSeconds = "coderl_checkpoint_write_seconds"
    case executionSeconds = "coderl_execution_seconds"
    case executorJobSeconds = "coderl_executor_job_seconds"
    case learnerStepSeconds = "coderl_learner_step_seconds"
    case learnerTrainSeconds = "coderl_learner_train_seconds"
    case samplerRequestSeconds = "coderl_sampler_request_seconds"
    case weightFetchSeconds = "coderl_weight_fetch_seconds"
    case weightLoadSeconds = "coderl_weight_load_seconds"
    case weightPublishSeconds = "coderl_weight_publish_seconds"
    case weightRegisterSeconds = "coderl_weight_register_seconds"
}

/// Observed values (Prometheus histogram; `Telemetry.observe`).
public enum ValueMetric: String, CaseIterable, Sendable {
    case policyLag = "coderl_policy_lag"
}

/// The catalogue as (name, kind) pairs, for documentation and its check.
public enum MetricCatalogue {
    public static var all: [(name: String, kind: String)] {
        CounterMetric.allCases.map { ($0.rawValue, "counter") } + GaugeMetric.allCases.map { ($0.rawValue, "gauge") }
            + DurationMetric.allCases.map { ($0.rawValue, "histogram") } + ValueMetric.allCases.map { ($0.rawValue, "histogram") }
    }
}
