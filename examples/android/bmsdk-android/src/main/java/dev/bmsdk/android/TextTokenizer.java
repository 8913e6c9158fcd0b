package dev.bmsdk.android;

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
        if ("WordPiece".equals(type)) {
            model = new WordPieceTokenizer(root)::tokens;
        } else if ("BPE".equals(type)) {
            model = new BpeTokenizer(root)::tokens;
        } else if ("Unigram".equals(type)) {
            model = new UnigramTokenizer(root)::tokens;
        } else {
            throw new IllegalArgumentException("unsupported tokenizer model " + type + " (WordPiece, BPE or Unigram)");
        }
        return new TextTokenizer(model, new PostProcessor(root.get("post_processor")), maxLength);
    }

    /** The tokens of one text, with special tokens, truncated to max_length; not padded. */
    public Encoding encode(String text) {
        return post.apply(model.apply(text), maxLength);
    }
}
