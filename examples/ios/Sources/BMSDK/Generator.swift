import Foundation

/// What a text-generation step graph fixes: layers, KV heads, head size and cache slots of its `past_key_<i>` /
/// `past_value_<i>` inputs [1, H, C, D], vocabulary size, the prefill lengths it accepts (nil: any), eos and pad
/// ids. Read from the "generation" object of test vectors (the keys bmsdk writes for an artifact).
public struct GenerationSpec {
    public var layers: Int
    public var kvHeads: Int
    public var headDim: Int
    public var cacheLength: Int
    public var vocabSize: Int
    public var prefillLengths: [Int]?
    public var eosIds: [Int]
    public var padId: Int

    public init(json g: [String: Any]) throws {
        func int(_ key: String) throws -> Int {
            guard let v = g[key] as? Int else { throw BMSDKError.input("generation spec: missing \(key)") }
            return v
        }
        layers = try int("layers")
        kvHeads = try int("kv_heads")
        headDim = try int("head_dim")
        cacheLength = try int("cache_length")
        vocabSize = try int("vocab_size")
        prefillLengths = (g["prefill_lengths"] as? [Int])?.sorted()
        eosIds = g["eos_ids"] as? [Int] ?? []
        padId = try int("pad_id")
    }
}

/// The caller-kept KV cache window: per layer, keys and values [1, H, C, D] (row-major) of which slots
/// 0..<valid hold the tokens seen so far.
struct KVCache {
    let heads: Int, slots: Int, dim: Int
    var keys: [[Float]]
    var values: [[Float]]
    private(set) var valid = 0

    init(_ spec: GenerationSpec) {
        heads = spec.kvHeads
        slots = spec.cacheLength
        dim = spec.headDim
        keys = Array(repeating: Array(repeating: 0, count: heads * slots * dim), count: spec.layers)
        values = keys
    }

    func addFeeds(_ feeds: inout [String: Tensor]) {
        for i in keys.indices {
            feeds["past_key_\(i)"] = Tensor(shape: [1, heads, slots, dim], values: .float32(keys[i]))
            feeds["past_value_\(i)"] = Tensor(shape: [1, heads, slots, dim], values: .float32(values[i]))
        }
    }

    /// [1, C + width]: the valid slots, then the real new tokens; the empty slots and the padding are 0.
    func attentionMask(real: Int, width: Int) -> [Int64] {
        var mask = [Int64](repeating: 0, count: slots + width)
        for i in 0..<valid { mask[i] = 1 }
        for i in slots..<(slots + real) { mask[i] = 1 }
        return mask
    }

    /// The presents [1, H, width, D] of the first `real` new tokens into slots valid..., which become valid.
    mutating func write(_ outputs: [String: [Float]], real: Int, width: Int) throws {
        for i in keys.indices {
            try copy(present(outputs, "present_key_\(i)", width), into: &keys[i], real: real, width: width)
            try copy(present(outputs, "present_value_\(i)", width), into: &values[i], real: real, width: width)
        }
        valid += real
    }

    /// Drop the `count` oldest slots: shift the rest left (the "slide" policy).
    mutating func dropOldest(_ count: Int) {
        func shift(_ layer: inout [Float]) {
            for h in 0..<heads {
                let base = h * slots * dim
                layer.replaceSubrange(base..<(base + (valid - count) * dim),
                                      with: layer[(base + count * dim)..<(base + valid * dim)])
            }
        }
        for i in keys.indices { shift(&keys[i]); shift(&values[i]) }
        valid -= count
    }

    private func present(_ outputs: [String: [Float]], _ name: String, _ width: Int) throws -> [Float] {
        guard let p = outputs[name], p.count == heads * width * dim else {
            throw BMSDKError.input("the step returned no \(name) of shape [1, \(heads), \(width), \(dim)]")
        }
        return p
    }

    private func copy(_ present: [Float], into cache: inout [Float], real: Int, width: Int) {
        for h in 0..<heads {
            let from = h * width * dim, to = (h * slots + valid) * dim
            cache.replaceSubrange(to..<(to + real * dim), with: present[from..<(from + real * dim)])
        }
    }
}

/// Generated tokens to text chunks: only complete UTF-8 characters, special tokens left out, and text that could
/// start a stop string held back until it is known not to be one. Once a stop string appears, the text before it
/// is emitted and `stopped` is true.
struct TextStream {
    let tokenizer: BPETokenizer
    let stopStrings: [[Unicode.Scalar]]
    let onText: ((String) -> Void)?
    private var decoder: TokenDecoder.Stream
    private(set) var text: [Unicode.Scalar] = []  // emitted, then held back
    private var emitted = 0
    private(set) var stopped = false

    init(tokenizer: BPETokenizer, stopStrings: [String], onText: ((String) -> Void)?) {
        self.tokenizer = tokenizer
        self.stopStrings = stopStrings.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
        self.onText = onText
        decoder = tokenizer.decoder.stream()
    }

    mutating func add(_ id: Int) {
        if !tokenizer.isSpecial(id) { push(decoder.feed(tokenizer.token(id)), last: false) }
    }

    mutating func finish() {
        if !stopped { push(decoder.finish(), last: true) }
    }

    private mutating func push(_ chunk: String, last: Bool) {
        text += chunk.unicodeScalars
        // a match starts in the unsent text: what could start a stop string was held back
        let first = stopStrings.compactMap { stop in
            stride(from: emitted, through: text.count - stop.count, by: 1).first { Array(text[$0..<$0 + stop.count]) == stop }
        }.min()
        if let first {
            text.removeSubrange(first...)
            stopped = true
        }
        emit(upTo: text.count - (stopped || last ? 0 : heldBack()))
    }

    /// The longest end of the text that is a proper start of a stop string (never more than what is unsent).
    private func heldBack() -> Int {
        var best = 0
        for stop in stopStrings {
            for k in stride(from: min(stop.count - 1, text.count - emitted), to: best, by: -1)
            where Array(text[(text.count - k)...]) == Array(stop[..<k]) {
                best = k
                break
            }
        }
        return best
    }

    private mutating func emit(upTo end: Int) {
        guard end > emitted else { return }
        onText?(String(String.UnicodeScalarView(text[emitted..<end])))
        emitted = end
    }
}

/// Text generation with a decoder-only LM exported as one step graph (see `GenerationSpec`): prefill the prompt in
/// chunks (right-padded to an accepted length when the graph takes fixed lengths), then decode one token per call,
/// keeping the KV cache window here. Stops at `maxNewTokens`, an eos id or a stop string. A full cache is refused
/// or slid (the oldest slots dropped; positions keep increasing). Feeds: `input_ids`, `position_ids` [1, T] and
/// `attention_mask` [1, C + T] as int64, `past_*` [1, H, C, D] as float32; the runner returns `logits` [1, T, V]
/// and `present_*` [1, H, T, D] flattened.
public final class Generator {
    public enum CachePolicy { case refuse, slide }

    public struct Options {
        public var maxNewTokens = 64
        public var temperature: Float = 0
        public var topK = 0
        public var topP: Float = 1
        public var seed: UInt64 = 0
        public var stopStrings: [String] = []
        public var cachePolicy = CachePolicy.refuse

        public init(maxNewTokens: Int = 64) { self.maxNewTokens = maxNewTokens }
    }

    public struct Result {
        public let promptIds: [Int]
        public let tokenIds: [Int]
        public let text: String
        /// "length", "eos" or "stop".
        public let stopReason: String
    }

    public let spec: GenerationSpec
    public let tokenizer: BPETokenizer
    private let runner: Runner

    public init(spec: GenerationSpec, tokenizer: BPETokenizer, runner: Runner) {
        self.spec = spec
        self.tokenizer = tokenizer
        self.runner = runner
    }

    /// Generate from a prompt; `onText` receives the text as it is generated.
    public func generate(_ prompt: String, options: Options = Options(), onText: ((String) -> Void)? = nil) throws -> Result {
        try generate(ids: tokenizer.encode(prompt), options: options, onText: onText)
    }

    public func generate(ids prompt: [Int], options: Options = Options(), onText: ((String) -> Void)? = nil) throws -> Result {
        guard !prompt.isEmpty, options.maxNewTokens >= 1 else {
            throw BMSDKError.input("generation needs at least one prompt token and maxNewTokens >= 1")
        }
        var session = Session(spec: spec, runner: runner, policy: options.cachePolicy)
        var sampler = try Sampler(temperature: options.temperature, topK: options.topK, topP: options.topP, seed: options.seed)
        var stream = TextStream(tokenizer: tokenizer, stopStrings: options.stopStrings, onText: onText)
        var row = try session.prefill(prompt)
        var tokens: [Int] = []
        var reason = "length"
        while true {
            let token = sampler.sample(row)
            tokens.append(token)
            stream.add(token)
            if spec.eosIds.contains(token) { reason = "eos"; break }
            if stream.stopped { reason = "stop"; break }
            if tokens.count == options.maxNewTokens { break }
            row = try session.step([token], width: try session.width(1))
        }
        stream.finish()
        return Result(promptIds: prompt, tokenIds: tokens, text: String(String.UnicodeScalarView(stream.text)), stopReason: reason)
    }

    /// The cache and position of one generation.
    struct Session {
        let spec: GenerationSpec
        let runner: Runner
        let policy: CachePolicy
        var cache: KVCache
        var position = 0

        init(spec: GenerationSpec, runner: Runner, policy: CachePolicy) {
            self.spec = spec
            self.runner = runner
            self.policy = policy
            cache = KVCache(spec)
        }

        /// The prompt in chunks; returns the logits row of its last token.
        mutating func prefill(_ ids: [Int]) throws -> [Float] {
            let largest = spec.prefillLengths?.last ?? min(ids.count, spec.cacheLength)
            var row: [Float] = []
            for start in stride(from: 0, to: ids.count, by: largest) {
                let chunk = Array(ids[start..<min(start + largest, ids.count)])
                row = try step(chunk, width: try width(chunk.count))
            }
            return row
        }

        /// The length a call of `real` tokens is padded to: the smallest accepted one (decode: 1 when accepted).
        func width(_ real: Int) throws -> Int {
            guard let lengths = spec.prefillLengths else { return real }
            guard let t = lengths.first(where: { $0 >= real }) else { throw BMSDKError.input("no prefill length holds \(real) tokens") }
            return t
        }

        /// One call with `ids` right-padded to `width`; returns the last real token's logits.
        mutating func step(_ ids: [Int], width: Int) throws -> [Float] {
            let real = ids.count
            try makeRoom(real)
            let outputs = try runner.run(feeds(ids, width: width))
            guard let logits = outputs["logits"], !logits.isEmpty, logits.count % width == 0 else {
                throw BMSDKError.input("the step returned no logits [1, \(width), vocab]")
            }
            try cache.write(outputs, real: real, width: width)
            position += real
            let vocab = logits.count / width
            return Array(logits[((real - 1) * vocab)..<(real * vocab)])
        }

        /// Built in their own function so that the feeds (which share the cache's arrays) are gone before the
        /// cache is written: the write then updates the arrays in place instead of copying them.
        private func feeds(_ ids: [Int], width: Int) -> [String: Tensor] {
            let input = (0..<width).map { Int64($0 < ids.count ? ids[$0] : spec.padId) }
            let positions = (0..<width).map { Int64(position + $0) }
            let mask = cache.attentionMask(real: ids.count, width: width)
            var feeds: [String: Tensor] = [
                "input_ids": Tensor(shape: [1, width], values: .int64(input)),
                "position_ids": Tensor(shape: [1, width], values: .int64(positions)),
                "attention_mask": Tensor(shape: [1, spec.cacheLength + width], values: .int64(mask)),
            ]
            cache.addFeeds(&feeds)
            return feeds
        }

        private mutating func makeRoom(_ real: Int) throws {
            let over = cache.valid + real - cache.slots
            guard over > 0 else { return }
            guard policy == .slide, real <= cache.slots else {
                throw BMSDKError.generation("the KV cache is full: \(cache.valid) + \(real) tokens > cache length \(cache.slots). "
                    + "Export the model with a longer cache (cache_length), generate fewer tokens, or use the .slide policy")
            }
            cache.dropOldest(over)
        }
    }
}
