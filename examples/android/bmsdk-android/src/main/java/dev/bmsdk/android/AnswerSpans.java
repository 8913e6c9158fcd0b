package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Extractive question answering: the best answer spans from start/end logits, as bmsdk's Python side
 * (sdk/tasks/spans.py, after transformers 4's QuestionAnsweringPipeline) chooses them. Per window of the context:
 * logits outside the context (question, special tokens; the CLS token kept) are set to -10000, start and end are
 * softmaxed, every span of at most `maxAnswerLen` tokens is scored p(start) * p(end), the best `topK` are kept (then,
 * as transformers does, those starting or ending outside the context dropped) and mapped to character offsets of
 * the context, whole words with `alignToWords`. The answers of all windows are ranked together; with
 * `handleImpossibleAnswer` the empty answer competes with the smallest CLS score of any window.
 */
public final class AnswerSpans {
    /** What predict() takes: top_k, max_answer_len, handle_impossible_answer, align_to_words. */
    public static final class Options {
        public int topK = 1;
        public int maxAnswerLen = 15;
        public boolean handleImpossibleAnswer = false;
        public boolean alignToWords = true;

        /** The defaults recorded in a manifest's postprocessing section. */
        public static Options fromPostprocessing(Map<String, Object> post) {
            Options o = new Options();
            if (post.get("top_k") != null) {
                o.topK = (int) Json.number(post.get("top_k"));
            }
            if (post.get("max_answer_len") != null) {
                o.maxAnswerLen = (int) Json.number(post.get("max_answer_len"));
            }
            if (post.get("handle_impossible_answer") != null) {
                o.handleImpossibleAnswer = Boolean.TRUE.equals(post.get("handle_impossible_answer"));
            }
            if (post.get("align_to_words") != null) {
                o.alignToWords = !Boolean.FALSE.equals(post.get("align_to_words"));
            }
            return o;
        }
    }

    /** One answer: its text, character offsets [start, end) into the context (code points) and score. */
    public static final class Answer {
        public final String answer;
        public final double score;
        public final int start;
        public final int end;

        Answer(String answer, double score, int start, int end) {
            this.answer = answer;
            this.score = score;
            this.start = start;
            this.end = end;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%.6g [%d, %d) '%s'", score, start, end, answer);
        }
    }

    static final double NULL_START = 1000000.0;

    private AnswerSpans() {
    }

    /**
     * The best answers (at most topK, best first) over the windows of one (question, context) pair, from each
     * window's start and end logits (entries past the window's tokens, padding, are ignored).
     */
    public static List<Answer> answers(String context, List<SpanEncoding> windows, List<float[]> startLogits,
            List<float[]> endLogits, Options options) {
        if (options.topK < 1 || options.maxAnswerLen < 1) {
            throw new IllegalArgumentException("top_k and max_answer_len must be whole numbers >= 1");
        }
        int[] cps = context.codePoints().toArray();
        List<Answer> all = new ArrayList<>();
        double minNull = NULL_START;
        for (int w = 0; w < windows.size(); w++) {
            minNull = Math.min(minNull, window(cps, windows.get(w), startLogits.get(w), endLogits.get(w), options, all));
        }
        if (options.handleImpossibleAnswer) {
            all.add(new Answer("", minNull, 0, 0));
        }
        List<Answer> sorted = new ArrayList<>(all);
        sorted.sort(Comparator.comparingDouble((Answer a) -> a.score).reversed());  // stable, as Python's sorted
        return new ArrayList<>(sorted.subList(0, Math.min(options.topK, sorted.size())));
    }

    /** Adds one window's answers to `out`; returns its null (CLS) score, NULL_START without handleImpossibleAnswer. */
    private static double window(int[] context, SpanEncoding enc, float[] startLogits, float[] endLogits, Options o, List<Answer> out) {
        int n = enc.ids.length;
        boolean[] undesired = new boolean[n];  // true: may be in the answer (Python's `undesired` is the reverse name)
        for (int i = 0; i < n; i++) {
            undesired[i] = enc.sequenceIds[i] == 1 || (enc.special[0] != 0 && enc.ids[i] == enc.ids[0]);
        }
        float[] start = probabilities(startLogits, undesired);
        float[] end = probabilities(endLogits, undesired);
        double minNull = NULL_START;
        if (o.handleImpossibleAnswer) {
            minNull = Math.min(minNull, (double) (start[0] * end[0]));
        }
        start[0] = 0f;
        end[0] = 0f;
        float[] scores = new float[n * n];  // every (start, end) pair, flattened as start * n + end
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n && j - i <= o.maxAnswerLen - 1; j++) {
                scores[i * n + j] = start[i] * end[j];
            }
        }
        Integer[] order = new Integer[scores.length];
        for (int k = 0; k < order.length; k++) {
            order[k] = k;
        }
        java.util.Arrays.sort(order, (a, b) -> {  // best first; ties by position, as numpy's argmax for top_k 1
            int c = Float.compare(scores[b], scores[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        for (int k = 0; k < Math.min(o.topK, order.length); k++) {
            int flat = order[k];
            int s = flat / n;
            int e = flat % n;
            // transformers' np.isin(starts, undesired.nonzero()) also matches index 0 (the row indices of the tuple)
            if (!(s == 0 || undesired[s]) || !(e == 0 || undesired[e])) {
                continue;
            }
            int[] chars = charSpan(enc, s, e, o.alignToWords);
            out.add(new Answer(new String(context, chars[0], chars[1] - chars[0]), scores[flat], chars[0], chars[1]));
        }
        return minNull;
    }

    private static float[] probabilities(float[] logits, boolean[] allowed) {
        float[] masked = new float[allowed.length];
        for (int i = 0; i < allowed.length; i++) {
            masked[i] = allowed[i] ? logits[i] : -10000.0f;
        }
        return Entities.softmax(masked);
    }

    private static int[] charSpan(SpanEncoding enc, int s, int e, boolean alignToWords) {
        if (alignToWords && enc.wordIds[s] >= 0 && enc.wordIds[e] >= 0) {
            int[] first = enc.wordToChars(enc.wordIds[s], 1);
            int[] last = enc.wordToChars(enc.wordIds[e], 1);
            if (first != null && last != null) {
                return new int[] {first[0], last[1]};
            }
        }
        return new int[] {enc.offsets[s][0], enc.offsets[e][1]};
    }
}
