package dev.bmsdk.android;

import java.util.List;
import java.util.function.Consumer;

/**
 * Generated tokens to text chunks for a listener: only complete UTF-8 characters (TokenDecoder.Stream), special
 * tokens left out, and text that could be the start of a stop string held back until it is known not to be one.
 * Once a stop string appears, the text before it is emitted and `stopped()` is true.
 */
final class TextStream {
    private final BpeTokenizer tokenizer;
    private final TokenDecoder.Stream decoder;
    private final List<String> stopStrings;
    private final Consumer<String> listener;
    private final StringBuilder text = new StringBuilder();  // emitted, then held back
    private int emitted;
    private boolean stopped;

    TextStream(BpeTokenizer tokenizer, List<String> stopStrings, Consumer<String> listener) {
        this.tokenizer = tokenizer;
        this.decoder = tokenizer.decoder.stream();
        this.stopStrings = stopStrings;
        this.listener = listener;
    }

    void add(int id) {
        if (!tokenizer.isSpecial(id)) {
            push(decoder.feed(tokenizer.token(id)), false);
        }
    }

    void finish() {
        if (!stopped) {
            push(decoder.finish(), true);
        }
    }

    boolean stopped() {
        return stopped;
    }

    /** The text so far: up to the stop string once stopped. */
    String text() {
        return text.toString();
    }

    private void push(String chunk, boolean last) {
        text.append(chunk);
        int first = -1;
        for (String stop : stopStrings) {
            int at = stop.isEmpty() ? -1 : text.indexOf(stop, emitted);  // held-back text starts any match
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        if (first >= 0) {
            text.setLength(first);
            stopped = true;
        }
        int hold = stopped || last ? 0 : heldBack();
        emit(text.length() - hold);
    }

    /** The longest end of the text that is a proper start of a stop string (never more than what is unsent). */
    private int heldBack() {
        int best = 0;
        for (String stop : stopStrings) {
            for (int k = Math.min(stop.length() - 1, text.length() - emitted); k > best; k--) {
                if (text.substring(text.length() - k).equals(stop.substring(0, k))) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }

    private void emit(int upTo) {
        if (upTo > emitted) {
            if (listener != null) {
                listener.accept(text.substring(emitted, upTo));
            }
            emitted = upTo;
        }
    }
}
