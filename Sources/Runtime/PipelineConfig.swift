import Foundation

/// Everything a pipeline run is configured with. Read from YAML layers (the pipeline file, the
/// config file it names with `config:`, `--config` files, `--set` assignments) by one
/// function, `init(reader:)`, which is also the reference of every key, its default and meaning.
public struct PipelineConfig: Sendable {
    public enum Baseline: String, Sendable, CaseIterable { case greedy, groupMean = "group-mean" }
    public enum ReturnMode: String, Sendable, CaseIterable { case relative, absolute }
    public enum RewardScheme: String, Sendable, CaseIterable { case coderl, pass }
    public enum CurriculumMode: String, Sendable, CaseIterable { case all, frontier }
    public enum CriticScaleChoice: String, Sendable, CaseIterable { case mean, raw }
    /// When the learner evaluates the held-out problems: the starting model, after warm-start,
    /// the last version.
    public enum HeldOutPoint: String, Sendable, CaseIterable { case before, warm, after }
    public enum CriticClassesChoice: String, Sendable, CaseIterable { case outcomes, binary }
    public enum SandboxChoice: String, Sendable, CaseIterable { case strict, relaxed }
    public enum PrecisionChoice: String, Sendable, CaseIterable { case auto, fp32, bf16 }

    public struct Run: Sendable {
        public var directory: String
        public var seed: UInt64
        public var steps: Int
    }

    public struct Roles: Sendable {
        public var samplers: Int
        public var executors: Int
        public var executorSlots: Int
        public var restartLimit: Int
        public var restartBackoffMs: Int
        public var samplerThreads: Int
        public var learnerThreads: Int

        /// The compute threads of a local sampler or the learner configured with `configured`:
        /// 0 means half the cores, rounded up (samplers and the learner work at the same time).
        public static func threads(_ configured: Int) -> Int {
            configured > 0 ? configured : (ProcessInfo.processInfo.activeProcessorCount + 1) / 2
        }
    }

    public struct Endpoints: Sendable {
        public var params: String
        public var announcements: String
        public var samples: String
        public var rollouts: String
        public var executors: String
        /// CURVE for executors: the labeler's key-pair file; empty = plain TCP.
        public var executorKeyFile: String
        /// Files of accepted executor public keys (one per line); empty = any key (still encrypted).
        public var executorAllowList: String
    }

    public struct Model: Sendable {
        public var actor: String
        public var tokenizer: String
        /// A trained critic to start from (a `coderl train-critic` output or a critic checkpoint).
        public var critic: String
        public var criticLayers: Int
        public var criticClasses: CriticClassesChoice
        public var maxSequenceTokens: Int
    }

    public struct Data: Sendable {
        public var sources: [String]
        public var trainSplits: [String]
        public var heldoutSplits: [String]
        public var maxTrainProblems: Int
        public var heldoutProblems: Int
        public var heldoutPoints: Set<HeldOutPoint>
    }

    public struct Sampling: Sendable {
        public var samplesPerProblem: Int
        public var temperature: Double
        public var topP: Double
        public var topK: Int
        public var maxNewTokens: Int
        public var baseline: Baseline
        public var precision: PrecisionChoice
        public var batchRequests: Int
    }

    public struct Training: Sendable {
        public var problemsPerStep: Int
        public var learningRate: Double
        public var criticLearningRate: Double
        public var weightDecay: Double
        public var clipNorm: Double
        public var trainedLayers: Int
        public var trainHead: Bool
        public var criticTrainedLayers: Int
        public var criticTrainEmbedding: Bool
        public var ceWeight: Double
        public var rlWeight: Double
        public var returnMode: ReturnMode
        public var reward: RewardScheme
        public var criticWeights: Bool
        public var criticScale: CriticScaleChoice
        public var klPenalty: Double
        public var klEvery: Int
        public var maxPolicyLag: Int
        public var requestsAhead: Int
        public var publishEvery: Int
        public var microBatch: Int
        public var warmStartSteps: Int
        public var curriculum: CurriculumMode
        public var frontierRetry: Int
        public var criticWarmupSteps: Int
        public var keepVersions: Int
        public var precision: PrecisionChoice
        public var checkpointEvery: Int
        public var checkpointMinutes: Double
    }

    public struct Execution: Sendable {
        public var secondsPerTest: Double
        public var memoryMB: Int
        public var leaseMs: Int
        public var heartbeatTimeoutMs: Int
        public var maxAttempts: Int
        public var stopAtFirstFailure: Bool
        public var sandbox: SandboxChoice
    }

    public enum LevelChoice: String, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }

    public struct Logging: Sendable {
        public var level: LevelChoice
        public var format: LogFormat
        /// Per role (param-store, critic-labeler, learner, sampler, executor); absent = `level`.
        public var roles: [String: LevelChoice]

        /// The level of `role`'s logs.
        public func level(of role: String) -> LevelChoice { roles[role] ?? level }
    }

    /// CURVE on every link of the pipeline (see `LinkSecurity` in the Pipeline module).
    public struct Security: Sendable {
        /// Every link encrypted and authenticated; false = plain TCP (only for a machine whose
        /// every local user is trusted).
        public var curve: Bool
        /// Where the run's key pairs live (empty: RUN/keys).
        public var keys: String
        /// A remote sampler's view of the head: its public key (empty: read from KEYS/head.key).
        public var serverKey: String
        /// This process's own key pair as a client (empty: KEYS/<role>.key).
        public var keyFile: String
        /// Accepted public keys of samplers on other machines, one per line; re-read when it changes.
        public var samplerAllowList: String
    }

    public struct Metrics: Sendable {
        /// First port of the processes `coderl run` starts (0: no metrics).
        public var port: Int
        public var host: String
    }

    /// The roles whose log level can be set one by one, with their config key.
    public static let loggedRoles = ["param-store", "critic-labeler", "learner", "sampler", "executor"]

    public var run: Run
    public var roles: Roles
    public var endpoints: Endpoints
    public var model: Model
    public var data: Data
    public var sampling: Sampling
    public var training: Training
    public var execution: Execution
    public var logging: Logging
    public var metrics: Metrics
    public var security: Security

    /// Reads every key (recording it in `reader.known`) and checks combinations; call
    /// `reader.finish()` afterwards to report unknown keys and every problem at once.
    public init(reader r: ConfigReader) {
        _ = r.string("config", "", "Another config file to read first (relative to this file); its values are overridden by this file's.")
        run = Run(
            directory: r.string("run.dir", "runs/coderl", "Run directory: ledger, weight versions, learner checkpoints, logs."),
            seed: UInt64(r.int("run.seed", 1, "Seed of every random choice (problem order, sampling, critic head).", min: 0)),
            steps: r.int("run.steps", 20, "Learner steps to train (the run stops after the last one).", min: 1))
        roles = Roles(
            samplers: r.int("roles.samplers", 1, "Sampler processes on this machine.", min: 0, max: 64),
            executors: r.int("roles.executors", 1, "Executor processes on this machine (more may join from other machines).", min: 0, max: 256),
            executorSlots: r.int("roles.executor_slots", 1, "Programs each local executor runs at once.", min: 1, max: 256),
            restartLimit: r.int("roles.restart_limit", 20, "Restarts of one role before the run gives up.", min: 0),
            restartBackoffMs: r.int("roles.restart_backoff_ms", 500, "First restart delay; doubles per consecutive crash up to 30 s.", min: 0),
            samplerThreads: r.int("roles.sampler_threads", 0, "Compute threads of each local sampler (0 = half the cores, rounded up: samplers and the learner work at the same time).", min: 0, max: 256),
            learnerThreads: r.int("roles.learner_threads", 0, "Compute threads of the learner (0 = half the cores, rounded up).", min: 0, max: 256))
        endpoints = Endpoints(
            params: r.string("endpoints.params", "tcp://127.0.0.1:5701", "param-store: weight requests and version publishing (ROUTER)."),
            announcements: r.string("endpoints.announcements", "tcp://127.0.0.1:5702", "param-store: new-version announcements (PUB)."),
            samples: r.string("endpoints.samples", "tcp://127.0.0.1:5703", "learner: sample requests for samplers (ROUTER)."),
            rollouts: r.string("endpoints.rollouts", "tcp://127.0.0.1:5704", "critic-labeler: generated rollouts from samplers (ROUTER)."),
            executors: r.string("endpoints.executors", "tcp://127.0.0.1:5705", "critic-labeler: execution jobs for executors (ROUTER)."),
            executorKeyFile: r.string("endpoints.executor_key_file", "", "CURVE key pair of the labeler's executor socket (created when missing); empty = the head's key (KEYS/head.key) when security.curve is on."),
            executorAllowList: r.string("endpoints.executor_allow", "", "File of accepted public keys of executors on other machines, one per line (coderl keys --allow); re-read when it changes; the run's local executors are always accepted."))
        model = Model(
            actor: r.string("model.actor", "", "Starting actor: GGUF file, Hugging Face directory or checkpoint (empty = the cached SmolLM2-135M-Instruct)."),
            tokenizer: r.string("model.tokenizer", "", "GGUF file with the tokenizer when the actor carries none."),
            critic: r.string("model.critic", "", "Starting critic: a critic checkpoint such as `coderl train-critic` writes (empty = a new critic from the actor's first model.critic_layers blocks and a random head). Its classes must be model.critic_classes."),
            criticLayers: r.int("model.critic_layers", 0, "Blocks of the actor the critic is built from (0 = a quarter of them; ignored with model.critic).", min: 0),
            criticClasses: r.choice("model.critic_classes", CriticClassesChoice.outcomes, "What the critic predicts"),
            maxSequenceTokens: r.int("model.max_sequence_tokens", 768, "Longest prompt + program trained on; longer rollouts are cut at this length.", min: 16))
        data = Data(
            sources: r.list("data.sources", ["builtin"], "Datasets imported into the ledger at start: builtin (the package's own problems) or a file (.jsonl in coderl's format; mbpp/humaneval/apps/codecontests files by name)."),
            trainSplits: r.list("data.train", ["builtin/train"], "Problems trained on, as source/split selectors."),
            heldoutSplits: r.list("data.heldout", ["builtin/heldout"], "Problems evaluated before and after training (never trained on)."),
            maxTrainProblems: r.int("data.max_train_problems", 0, "Use at most this many training problems (0 = all).", min: 0),
            heldoutProblems: r.int("data.heldout_problems", 30, "Held-out problems evaluated (greedy) before and after training (0 = skip).", min: 0),
            heldoutPoints: Set(r.choices("data.heldout_points", HeldOutPoint.allCases, "When the held-out problems are evaluated: before (the starting model), warm (after warm-start), after (the last version). Arms of one experiment that share the starting model and warm-start need before and warm only once (coderl compare RUN:POINT compares across runs).")))
        sampling = Sampling(
            samplesPerProblem: r.int("sampling.samples_per_problem", 4, "Programs sampled per problem (K), besides the greedy baseline.", min: 1, max: 256),
            temperature: r.double("sampling.temperature", 0.8, "Sampling temperature.", min: 0.01, max: 10),
            topP: r.double("sampling.top_p", 0.95, "Nucleus sampling mass.", min: 0.01, max: 1),
            topK: r.int("sampling.top_k", 0, "Sample among the k likeliest tokens (0 = all).", min: 0),
            maxNewTokens: r.int("sampling.max_new_tokens", 192, "Longest program, in tokens.", min: 1),
            baseline: r.choice("sampling.baseline", Baseline.greedy, "Return baseline: the greedy program (CodeRL) or the mean reward of the K samples"),
            precision: r.choice("sampling.precision", PrecisionChoice.auto, "Arithmetic of the samplers' matrix products: fp32, bf16 (weights packed once per version as bfloat16, fp32 sums: about twice as fast; needs AVX512-BF16), or auto (bf16 where the CPU has AVX512-BF16, else fp32; the log says which)"),
            batchRequests: r.int("sampling.batch_requests", 16, "Sample requests a sampler takes at once and generates as one batch (every sequence of every problem decodes together).", min: 1, max: 256))
        training = Training(
            problemsPerStep: r.int("training.problems_per_step", 4, "Problems sampled for each learner step.", min: 1),
            learningRate: r.double("training.learning_rate", 2e-5, "Actor AdamW learning rate.", min: 0),
            criticLearningRate: r.double("training.critic_learning_rate", 1e-4, "Critic AdamW learning rate.", min: 0),
            weightDecay: r.double("training.weight_decay", 0.0, "Decoupled weight decay (matrices only).", min: 0),
            clipNorm: r.double("training.clip_norm", 1.0, "Clip gradients to this global norm (0 = off).", min: 0),
            trainedLayers: r.int("training.trained_layers", 4, "Train only the top N blocks of the actor (0 = all).", min: 0),
            trainHead: r.bool("training.train_head", false, "Train the actor's output head (with SmolLM2's tied embeddings: the 28M-parameter embedding). false keeps it as it is: each step skips its weight gradient, and a new version differs from the last only in the trained blocks and the final norm, which is all a sampler fetches."),
            criticTrainedLayers: r.int("training.critic_trained_layers", 0, "Train only the top N blocks of the critic backbone (0 = all); the head is always trained.", min: 0),
            criticTrainEmbedding: r.bool("training.critic_train_embedding", false, "Train the critic's embedding too when all its blocks are trained (28M parameters with SmolLM2; false keeps it, and a critic version then differs only in its blocks and head)."),
            ceWeight: r.double("training.ce_weight", 1.0, "Weight of cross-entropy on reference solutions in the actor loss.", min: 0),
            rlWeight: r.double("training.rl_weight", 1.0, "Weight of the policy-gradient term in the actor loss.", min: 0),
            returnMode: r.choice("training.return", ReturnMode.relative, "Return: reward minus baseline, or the reward itself"),
            reward: r.choice("training.reward", RewardScheme.coderl, "Reward: CodeRL's graded outcomes (compile error -1, runtime error -0.6, failed test -0.3, passed 1), or pass (1 passed, 0 otherwise)"),
            criticWeights: r.bool("training.critic_weights", true, "Weight each token by the critic's probability of the program's outcome (false: plain REINFORCE with baseline)."),
            criticScale: r.choice("training.critic_scale", CriticScaleChoice.mean, "How the critic's per-token probabilities weight a program's return: mean (each program's weights rescaled to mean 1, so the critic only decides which tokens carry the return; raw probabilities of a pass are small where passes are rare and would shrink exactly the programs that passed), or raw (the probabilities as they are, as in the CodeRL paper)"),
            klPenalty: r.double("training.kl_penalty", 0.0, "Per-token penalty beta * (log p - log p_initial) subtracted from the return (0 = off).", min: 0),
            klEvery: r.int("training.kl_every", 10, "Measure the sampling policy's KL divergence from the starting model every N steps, on the step's fresh samples (a forward pass of the starting model; every step when kl_penalty > 0; 0 = never).", min: 0),
            maxPolicyLag: r.int("training.max_policy_lag", 2, "Rollouts more than this many versions behind are stale: used for the critic, not the actor (counted).", min: 0),
            requestsAhead: r.int("training.requests_ahead", 1, "Steps of sample requests kept in flight beyond the one being trained.", min: 0, max: 16),
            publishEvery: r.int("training.publish_every", 1, "Publish a new actor and critic version every N steps.", min: 1),
            microBatch: r.int("training.micro_batch", 4, "Sequences per forward/backward (gradients are accumulated).", min: 1),
            warmStartSteps: r.int("training.warm_start_steps", 0, "Cross-entropy steps on reference solutions before RL starts.", min: 0),
            curriculum: r.choice("training.curriculum", CurriculumMode.all, "Which training problems RL samples: all (every problem in turn, a new shuffle each epoch), or frontier (after the first epoch only problems whose last sampled group had some but not all programs passing; the others carry no pass/fail signal)"),
            frontierRetry: r.int("training.frontier_retry", 0, "Under the frontier curriculum, a problem off the frontier is sampled again after it has been passed over this many times (about once per N+1 epochs of the problem stream), so that problems the model has learned to solve sometimes, or forgotten, rejoin it; 0 = never (the frontier only drains).", min: 0),
            criticWarmupSteps: r.int("training.critic_warmup_steps", 0, "Learner steps before critic weights are used (the untrained critic's weights are replaced by 1).", min: 0),
            keepVersions: r.int("training.keep_versions", 3, "Weight versions the param-store keeps per model (besides version 0); older ones are deleted.", min: 1),
            precision: r.choice("training.precision", PrecisionChoice.auto, "Arithmetic of the actor's and critic's matrix products: fp32, bf16 (bfloat16 inputs with fp32 sums, mixed precision; needs AVX512-BF16), or auto (bf16 where the CPU has AVX512-BF16, else fp32; the log says which)"),
            checkpointEvery: r.int("training.checkpoint_every", 10, "Checkpoint the learner every N published versions (and at the end of warm-start and of the run); a restart resumes from the last checkpoint and the ledger.", min: 1),
            checkpointMinutes: r.double("training.checkpoint_minutes", 10, "Also checkpoint when this many minutes passed since the last checkpoint (0 = only by steps).", min: 0))
        execution = Execution(
            secondsPerTest: r.double("execution.seconds_per_test", 4, "Wall-clock limit per test.", min: 0.05),
            memoryMB: r.int("execution.memory_mb", 512, "Memory limit of a program.", min: 16),
            leaseMs: r.int("execution.lease_ms", 60_000, "A job not answered within its lease goes to another executor.", min: 100),
            heartbeatTimeoutMs: r.int("execution.heartbeat_timeout_ms", 5000, "An executor silent this long is presumed dead; its jobs are re-issued.", min: 100),
            maxAttempts: r.int("execution.max_attempts", 8, "Infrastructure failures of one job before it is parked (logged, never scored).", min: 1),
            stopAtFirstFailure: r.bool("execution.stop_at_first_failure", true, "Stop a program at its first failing test."),
            sandbox: r.choice("execution.sandbox", SandboxChoice.strict, "Sandbox of local executors: strict refuses to run without bubblewrap and user namespaces; relaxed runs with what the machine offers and says so in every verdict"))
        let level = r.choice("logging.level", LevelChoice.info, "Log level of every role: trace, debug, info, notice, warning, error or critical.")
        var levels: [String: LevelChoice] = [:]
        for role in Self.loggedRoles {
            let key = "logging." + role.replacingOccurrences(of: "-", with: "_")
            let text = r.string(key, "", "Log level of the \(role) (empty: logging.level).")
            if text.isEmpty { continue }
            if let l = LevelChoice(rawValue: text) { levels[role] = l } else {
                r.problem(key, "'\(text)' is not one of \(LevelChoice.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        logging = Logging(level: level, format: r.choice("logging.format", LogFormat.text, "Log lines: text (time level [role instance] message) or json (one object per line)."), roles: levels)
        metrics = Metrics(
            port: r.int("metrics.port", 9464, "Prometheus metrics: coderl run gives its processes this port and the next ones (param-store, critic-labeler, learner, samplers, executors; listed in RUN/metrics-targets.json); 0 turns metrics off.", min: 0, max: 65000),
            host: r.string("metrics.host", "127.0.0.1", "Address the metrics servers listen on (IPv4); 0.0.0.0 serves every interface, without authentication."))
        security = Security(
            curve: r.bool("security.curve", true, "CURVE (encrypted, authenticated) on every link: param-store, the learner's sample requests, the labeler's rollouts and executors. Clients not on a link's allow-list get nothing and are logged. false = plain TCP."),
            keys: r.string("security.keys", "", "Directory of the run's key pairs (head.key for every server socket; learner, labeler, sampler and local-executor client keys), made once; empty = RUN/keys."),
            serverKey: r.string("security.server_key", "", "The head's public key (Z85), for a sampler on another machine; empty = read KEYS/head.key."),
            keyFile: r.string("security.key_file", "", "This process's client key pair file (created when missing); empty = KEYS/<role>.key. A sampler on another machine lists its public key in the head's security.sampler_allow."),
            samplerAllowList: r.string("security.sampler_allow", "", "File of accepted public keys of samplers on other machines, one per line (coderl keys --allow); re-read when it changes; the run's local samplers are always accepted."))
        check(r)
    }

    /// Combinations that cannot work.
    private func check(_ r: ConfigReader) {
        if training.requestsAhead > training.maxPolicyLag {
            r.problem("training.requests_ahead", "\(training.requestsAhead) steps of requests in flight would make rollouts up to \(training.requestsAhead) versions old, beyond training.max_policy_lag \(training.maxPolicyLag): every rollout could be stale")
        }
        if sampling.baseline == .groupMean && sampling.samplesPerProblem < 2 && training.returnMode == .relative {
            r.problem("sampling.baseline", "a group-mean baseline needs at least 2 samples per problem (sampling.samples_per_problem is \(sampling.samplesPerProblem))")
        }
        if training.ceWeight == 0 && training.rlWeight == 0 {
            r.problem("training.rl_weight", "training.ce_weight and training.rl_weight are both 0: the actor would not learn")
        }
        if model.criticLayers > 0 && training.criticTrainedLayers > model.criticLayers {
            r.problem("training.critic_trained_layers", "\(training.criticTrainedLayers) is more than the critic's \(model.criticLayers) blocks")
        }
        if roles.samplers == 0 { r.problem("roles.samplers", "no sampler: this machine must run at least one (more may join)") }
        let ports = [("endpoints.params", endpoints.params), ("endpoints.announcements", endpoints.announcements),
                     ("endpoints.samples", endpoints.samples), ("endpoints.rollouts", endpoints.rollouts),
                     ("endpoints.executors", endpoints.executors)]
        var seen: [String: String] = [:]
        for (key, endpoint) in ports {
            if !(endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://")) {
                r.problem(key, "'\(endpoint)' is not a tcp:// or ipc:// endpoint")
            } else if let other = seen[endpoint] {
                r.problem(key, "'\(endpoint)' is also \(other)")
            }
            seen[endpoint] = key
        }
    }

    /// Rollouts each learner step consumes: K samples plus the greedy baseline, per problem.
    public var rolloutsPerStep: Int { training.problemsPerStep * rolloutsPerProblem }
    public var rolloutsPerProblem: Int { sampling.samplesPerProblem + (needsGreedy ? 1 : 0) }
    /// The greedy program is sampled when it is the baseline (and always for held-out evaluation).
    public var needsGreedy: Bool { sampling.baseline == .greedy && training.returnMode == .relative }

    // Paths inside the run directory.
    public var ledgerPath: String { run.directory + "/ledger" }
    public var weightsPath: String { run.directory + "/weights" }
    public var learnerPath: String { run.directory + "/learner" }
    public var logsPath: String { run.directory + "/logs" }
    public var keysPath: String { security.keys.isEmpty ? run.directory + "/keys" : security.keys }
}

extension PipelineConfig {
    /// Reads the layers in order: the file named by the first layer's `config:` key (relative
    /// to it), the files themselves, then `--set` assignments. Throws every problem at once.
    public static func load(files: [String], assignments: [String] = []) throws -> (PipelineConfig, ConfigValues) {
        var values = ConfigValues()
        // A file's `config:` key names a base file, read before it (recursively).
        func layer(_ file: String, _ chain: [String]) throws {
            var probe = ConfigValues()
            try probe.load(file: file)
            if case .scalar(let base)? = probe["config"]?.value, !base.isEmpty {
                let path = base.hasPrefix("/") ? base : ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(base)
                let s = probe["config"]!.source
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ConfigError(file: s.file, line: s.line, key: "config", reason: "no such file: \(path)")
                }
                let canonical = (path as NSString).standardizingPath
                guard !chain.contains(canonical), chain.count < 8 else {
                    throw ConfigError(file: s.file, line: s.line, key: "config", reason: "\(path) includes itself")
                }
                try layer(path, chain + [canonical])
            }
            try values.load(file: file)
        }
        for file in files { try layer(file, [(file as NSString).standardizingPath]) }
        for a in assignments { try values.set(a) }
        let reader = ConfigReader(values)
        let config = PipelineConfig(reader: reader)
        try reader.finish()
        return (config, values)
    }

    /// Every key with its default and meaning, in reading order.
    public static var reference: [ConfigReader.KeyInfo] {
        let reader = ConfigReader(ConfigValues())
        _ = PipelineConfig(reader: reader)
        return reader.known
    }
}
