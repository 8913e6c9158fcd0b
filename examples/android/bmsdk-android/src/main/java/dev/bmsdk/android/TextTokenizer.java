package dev.bmsdk.android;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The tokenizer of a text model, read from the artifact's tokenizer/tokenizer.json and applied as bmsdk's Python
 * pre-processing (Hugging Face `tokenizers`, no padding, truncation to max_length): WordPiece (BERT), BPE (RoBERTa
 * and other byte-level BPE; SentencePiece-style BPE) and Unigram (XLM-RoBERTa, ALBERT, DeBERTa-v2), each with its
 * normalizer, pre-tokenizer, added tokens and post-processor. A tokenizer.json using a part this library does not
 * implement is refused here, at load, with the part's name: it never gives different ids silently.
 */
public final class TextTokenizer {
    private final Function<String, List<Integer>> model;
    private final PostProcessor post;
    private final int maxLength;
    private Function<String, List<Pipeline.Token>> aligned;
    private final Map<Integer, String> tokenStrings = new HashMap<>();
    private TokenDecoder decoder;
    private Integer unkId;
    private boolean wordAware;

    private TextTokenizer(Function<String, List<Integer>> model, PostProcessor post, int maxLength) {
        this.model = model;
        this.post = post;
        this.maxLength = maxLength;
    }

    /** From the text of a tokenizer.json and the artifact's max_length (special tokens included). */
    public static TextTokenizer fromJson(String tokenizerJson, int maxLength) {
        Map<String, Object> root = Json.object(Json.parse(tokenizerJson));
        Object type = Json.object(root.get("model")).get("type");
        Function<String, List<Integer>> model;
        Function<String, List<Pipeline.Token>> aligned = null;
        Integer unk = null;
        boolean wordAware = false;
        if ("WordPiece".equals(type)) {
            WordPieceTokenizer wp = new WordPieceTokenizer(root);
            model = wp::tokens;
            aligned = wp::alignedTokens;
            unk = wp.unkId();
            wordAware = wp.wordAware();
        } else if ("BPE".equals(type)) {
            BpeTokenizer bpe = new BpeTokenizer(root);
            model = bpe::tokens;
            aligned = bpe::alignedTokens;
            unk = bpe.unkId();
        } else if ("Unigram".equals(type)) {
            model = new UnigramTokenizer(root)::tokens;
        } else {
            throw new IllegalArgumentException("unsupported tokenizer model " + type + " (WordPiece, BPE or Unigram)");
        }
        TextTokenizer t = new TextTokenizer(model, new PostProcessor(root.get("post_processor")), maxLength);
        t.aligned = aligned;
        t.unkId = unk;
        t.wordAware = wordAware;
        t.decoder = root.get("decoder") == null ? null : new TokenDecoder(root.get("decoder"));
        Object vocab = Json.object(root.get("model")).get("vocab");
        if (vocab instanceof Map) {
            for (Map.Entry<String, Object> e : Json.object(vocab).entrySet()) {
                t.tokenStrings.put((int) Json.number(e.getValue()), e.getKey());
            }
        }
        if (root.get("added_tokens") != null) {
            for (Object a : Json.array(root.get("added_tokens"))) {
                Map<String, Object> added = Json.object(a);
                t.tokenStrings.put((int) Json.number(added.get("id")), (String) added.get("content"));
            }
        }
        return t;
    }

    private Function<String, List<Pipeline.Token>> aligned() {
        if (aligned == null) {
            throw new IllegalArgumentException("character offsets are implemented for WordPiece and BPE tokenizers only");
        }
        return aligned;
    }

    /** One text with token strings, character offsets, special-tokens mask and word ids (token classification). */
    public SpanEncoding encodeWithOffsets(String text) {
        return post.single(aligned().apply(text), maxLength, tokenStrings::get);
    }

    /**
     * A (question, context) pair as bmsdk's question-answering pre-processing encodes it: the context alone is
     * truncated, into windows of max_length tokens overlapping by `stride` context tokens (the first window first).
     */
    public List<SpanEncoding> encodePair(String question, String context, int stride) {
        return post.pair(aligned().apply(question), aligned().apply(context), maxLength, stride, tokenStrings::get);
    }

    /** Tokens back to text as transformers' convert_tokens_to_string (the tokenizer's decoder; none: spaces). */
    public String joinTokens(List<String> tokens) {
        return decoder == null ? String.join(" ", tokens) : decoder.decode(tokens);
    }

    /** The id of the model's unknown token, or null. */
    public Integer unkId() {
        return unkId;
    }

    /** Whether the model marks word-continuing pieces (WordPiece's "##"). */
    public boolean wordAware() {
        return wordAware;
    }

    /** The tokens of one text, with special tokens, truncated to max_length; not padded. */
    public Encoding encode(String text) {
        return post.apply(model.apply(text), maxLength);
    }
}
