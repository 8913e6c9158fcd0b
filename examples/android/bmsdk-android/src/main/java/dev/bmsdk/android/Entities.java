package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/**
 * Entities from per-token logits (token classification, e.g. NER), as bmsdk's Python side (sdk/tasks/entities.py)
 * and transformers' TokenClassificationPipeline make them. Aggregation strategies: `none` (one entity per token),
 * `simple` (adjacent tokens of one entity type grouped, a `B-` tag starting a new group) and the word-level
 * `first`, `average`, `max` (each piece of a word takes the label of its first piece, of the average of its
 * pieces' scores, or of its most confident piece; then grouped as `simple`). Special tokens never become entities;
 * start/end are character offsets (code points) into the text; labels in `ignore` (default "O") are left out.
 */
public final class Entities {
    public static final List<String> STRATEGIES = List.of("none", "simple", "first", "average", "max");

    /** One entity: `label` is the token's label (strategy none: "B-PER") or the group's ("PER"). */
    public static final class Entity {
        public final String label;
        public final boolean grouped;
        public final double score;
        /** The token index (strategy none), else -1. */
        public final int index;
        public final String word;
        public final int start;
        public final int end;

        Entity(String label, boolean grouped, double score, int index, String word, int start, int end) {
            this.label = label;
            this.grouped = grouped;
            this.score = score;
            this.index = index;
            this.word = word;
            this.start = start;
            this.end = end;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s %s %.6f [%d, %d) '%s'", grouped ? "group" : "entity", label, score, start, end, word);
        }
    }

    private static final class Piece {
        String word;
        float[] scores;
        int start;
        int end;
        int index;
        boolean subword;
    }

    private Entities() {
    }

    /** The strategy name, lower-cased and checked. */
    public static String checkStrategy(String strategy) {
        String name = strategy.toLowerCase(Locale.ROOT);
        if (!STRATEGIES.contains(name)) {
            throw new IllegalArgumentException("unknown aggregation_strategy " + strategy + ": use one of " + STRATEGIES);
        }
        return name;
    }

    /** Softmax over the labels of one token, in float32 as the Python side computes it. */
    public static float[] softmax(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        float[] out = new float[logits.length];
        float sum = 0f;
        for (int i = 0; i < logits.length; i++) {
            out[i] = (float) Math.exp(logits[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < out.length; i++) {
            out[i] /= sum;
        }
        return out;
    }

    /**
     * The entities of `text` from its encoding and the model's logits [tokens][labels] (rows past the encoding,
     * padding, are ignored).
     */
    public static List<Entity> of(String text, SpanEncoding enc, float[][] logits, List<String> labels,
            TextTokenizer tokenizer, String strategy, Collection<String> ignore) {
        strategy = checkStrategy(strategy);
        int[] cps = text.codePoints().toArray();
        List<Piece> pieces = new ArrayList<>();
        for (int i = 0; i < enc.ids.length; i++) {
            if (enc.special[i] != 0) {
                continue;
            }
            Piece p = new Piece();
            p.start = enc.offsets[i][0];
            p.end = enc.offsets[i][1];
            p.index = i;
            p.scores = softmax(logits[i]);
            p.word = enc.tokens[i];
            String ref = new String(cps, p.start, p.end - p.start);
            if (tokenizer.wordAware()) {
                p.subword = p.word.codePointCount(0, p.word.length()) != p.end - p.start;
            } else {
                boolean space = (p.start - 1 >= 0 && cps[p.start - 1] == ' ') || (p.start < cps.length && cps[p.start] == ' ');
                p.subword = p.start > 0 && !space;
            }
            Integer unk = tokenizer.unkId();
            if (unk != null && enc.ids[i] == unk) {
                p.word = ref;
                p.subword = false;
            }
            pieces.add(p);
        }
        List<Entity> found = new ArrayList<>();
        if (strategy.equals("first") || strategy.equals("average") || strategy.equals("max")) {
            List<List<Piece>> words = new ArrayList<>();
            for (Piece p : pieces) {
                if (!words.isEmpty() && p.subword) {
                    words.get(words.size() - 1).add(p);
                } else {
                    List<Piece> w = new ArrayList<>();
                    w.add(p);
                    words.add(w);
                }
            }
            for (List<Piece> group : words) {
                found.add(word(group, labels, tokenizer, strategy));
            }
        } else {
            for (Piece p : pieces) {
                int best = argmax(p.scores);
                found.add(new Entity(labels.get(best), false, p.scores[best], p.index, p.word, p.start, p.end));
            }
        }
        if (!strategy.equals("none")) {
            found = group(found, tokenizer);
        }
        List<Entity> out = new ArrayList<>();
        for (Entity e : found) {
            if (!ignore.contains(e.label)) {
                out.add(e);
            }
        }
        return out;
    }

    private static Entity word(List<Piece> group, List<String> labels, TextTokenizer tokenizer, String strategy) {
        float[] scores;
        if (strategy.equals("first")) {
            scores = group.get(0).scores;
        } else if (strategy.equals("max")) {
            scores = group.get(0).scores;
            for (Piece p : group) {
                if (p.scores[argmax(p.scores)] > scores[argmax(scores)]) {
                    scores = p.scores;
                }
            }
        } else {
            scores = new float[group.get(0).scores.length];
            for (int k = 0; k < scores.length; k++) {
                double sum = 0;
                for (Piece p : group) {
                    sum += p.scores[k];
                }
                scores[k] = (float) (sum / group.size());
            }
        }
        int best = argmax(scores);
        List<String> words = new ArrayList<>();
        for (Piece p : group) {
            words.add(p.word);
        }
        return new Entity(labels.get(best), false, scores[best], -1, tokenizer.joinTokens(words), group.get(0).start,
                group.get(group.size() - 1).end);
    }

    /** {"B" or "I", type}: a label not in B-/I- form counts as a continuation of its own type. */
    private static String[] tag(String label) {
        if (label.startsWith("B-") || label.startsWith("I-")) {
            return new String[] {label.substring(0, 1), label.substring(2)};
        }
        return new String[] {"I", label};
    }

    private static List<Entity> group(List<Entity> found, TextTokenizer tokenizer) {
        List<List<Entity>> groups = new ArrayList<>();
        for (Entity e : found) {
            String[] t = tag(e.label);
            if (!groups.isEmpty()) {
                List<Entity> last = groups.get(groups.size() - 1);
                if (t[1].equals(tag(last.get(last.size() - 1).label)[1]) && !t[0].equals("B")) {
                    last.add(e);
                    continue;
                }
            }
            List<Entity> g = new ArrayList<>();
            g.add(e);
            groups.add(g);
        }
        List<Entity> out = new ArrayList<>();
        for (List<Entity> g : groups) {
            String first = g.get(0).label;
            int dash = first.indexOf('-');
            double sum = 0;
            List<String> words = new ArrayList<>();
            for (Entity e : g) {
                sum += e.score;
                words.add(e.word);
            }
            out.add(new Entity(dash >= 0 ? first.substring(dash + 1) : first, true, sum / g.size(), -1,
                    tokenizer.joinTokens(words), g.get(0).start, g.get(g.size() - 1).end));
        }
        return out;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
