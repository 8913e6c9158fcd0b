package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A tokenizer.json `post_processor` for one sequence: the special tokens around it and the token type ids, as
 * Hugging Face applies them (TemplateProcessing's `single`, BertProcessing and RobertaProcessing: cls ... sep,
 * ByteLevel: offsets only, Sequence). Truncation keeps room for the special tokens, as `enable_truncation` does.
 */
final class PostProcessor {
    private final List<Integer> prefix = new ArrayList<>();
    private final List<Integer> prefixTypes = new ArrayList<>();
    private final List<Integer> suffix = new ArrayList<>();
    private final List<Integer> suffixTypes = new ArrayList<>();
    private int sequenceType;
    /** The pair template: {-1, type} for the first text, {-2, type} for the second, {id, type} for special tokens. */
    private final List<int[]> pair = new ArrayList<>();
    private boolean trimOffsets;
    private boolean trimPrefixSpace;

    PostProcessor(Object json) {
        if (json != null) {
            read(Json.object(json));
        }
    }

    private void read(Map<String, Object> p) {
        String type = (String) p.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(p.get("processors"))) {
                    read(Json.object(inner));
                }
                break;
            case "ByteLevel":
                trimOffsets |= !Boolean.FALSE.equals(p.get("trim_offsets"));  // adjusts offsets only
                trimPrefixSpace |= Boolean.TRUE.equals(p.get("add_prefix_space"));
                break;
            case "BertProcessing":
            case "RobertaProcessing": {
                int cls = (int) Json.number(Json.array(p.get("cls")).get(1));
                int sep = (int) Json.number(Json.array(p.get("sep")).get(1));
                prefix.add(cls);
                prefixTypes.add(0);
                suffix.add(sep);
                suffixTypes.add(0);
                pair.clear();
                if ("BertProcessing".equals(type)) {  // [CLS] A [SEP] B [SEP], B and its [SEP] type 1
                    pair.addAll(List.of(new int[] {cls, 0}, new int[] {-1, 0}, new int[] {sep, 0}, new int[] {-2, 1}, new int[] {sep, 1}));
                } else {  // <s> A </s> </s> B </s>, all type 0
                    pair.addAll(List.of(new int[] {cls, 0}, new int[] {-1, 0}, new int[] {sep, 0}, new int[] {sep, 0},
                            new int[] {-2, 0}, new int[] {sep, 0}));
                    trimOffsets |= !Boolean.FALSE.equals(p.get("trim_offsets"));
                    trimPrefixSpace |= Boolean.TRUE.equals(p.get("add_prefix_space"));
                }
                break;
            }
            case "TemplateProcessing":
                readTemplate(p);
                break;
            default:
                throw new IllegalArgumentException("unsupported tokenizer post-processor " + type);
        }
    }

    private void readTemplate(Map<String, Object> p) {
        Map<String, Object> specials = Json.object(p.get("special_tokens"));
        boolean after = false;
        for (Object item : Json.array(p.get("single"))) {
            Map<String, Object> piece = Json.object(item);
            if (piece.containsKey("Sequence")) {
                after = true;
                sequenceType = typeId(Json.object(piece.get("Sequence")));
                continue;
            }
            Map<String, Object> token = Json.object(piece.get("SpecialToken"));
            Object special = specials.get((String) token.get("id"));
            if (special == null) {
                throw new IllegalArgumentException("post-processor template names an unknown special token " + token.get("id"));
            }
            for (Object id : Json.array(Json.object(special).get("ids"))) {
                (after ? suffix : prefix).add((int) Json.number(id));
                (after ? suffixTypes : prefixTypes).add(typeId(token));
            }
        }
        pair.clear();
        if (p.get("pair") != null) {
            for (Object item : Json.array(p.get("pair"))) {
                Map<String, Object> piece = Json.object(item);
                if (piece.containsKey("Sequence")) {
                    Map<String, Object> seq = Json.object(piece.get("Sequence"));
                    pair.add(new int[] {"B".equals(seq.get("id")) ? -2 : -1, typeId(seq)});
                    continue;
                }
                Map<String, Object> token = Json.object(piece.get("SpecialToken"));
                for (Object id : Json.array(Json.object(specials.get((String) token.get("id"))).get("ids"))) {
                    pair.add(new int[] {(int) Json.number(id), typeId(token)});
                }
            }
        }
    }

    private static int typeId(Map<String, Object> piece) {
        return piece.get("type_id") == null ? 0 : (int) Json.number(piece.get("type_id"));
    }

    List<Integer> prefix() {
        return prefix;
    }

    List<Integer> suffix() {
        return suffix;
    }

    /** `tokens` cut to leave room for the special tokens within `maxLength`, then wrapped in them. */
    Encoding apply(List<Integer> tokens, int maxLength) {
        int kept = Math.min(tokens.size(), Math.max(0, maxLength - prefix.size() - suffix.size()));
        int n = prefix.size() + kept + suffix.size();
        long[] ids = new long[n];
        long[] types = new long[n];
        int i = 0;
        for (int k = 0; k < prefix.size(); k++, i++) {
            ids[i] = prefix.get(k);
            types[i] = prefixTypes.get(k);
        }
        for (int k = 0; k < kept; k++, i++) {
            ids[i] = tokens.get(k);
            types[i] = sequenceType;
        }
        for (int k = 0; k < suffix.size(); k++, i++) {
            ids[i] = suffix.get(k);
            types[i] = suffixTypes.get(k);
        }
        return new Encoding(ids, types);
    }

    /** One text's tokens with offsets, cut to leave room for the special tokens within `maxLength`, then wrapped. */
    SpanEncoding single(List<Pipeline.Token> tokens, int maxLength, java.util.function.IntFunction<String> tokenString) {
        int kept = Math.min(tokens.size(), Math.max(0, maxLength - prefix.size() - suffix.size()));
        List<int[]> template = new ArrayList<>();
        for (int k = 0; k < prefix.size(); k++) {
            template.add(new int[] {prefix.get(k), prefixTypes.get(k)});
        }
        template.add(new int[] {-1, sequenceType});
        for (int k = 0; k < suffix.size(); k++) {
            template.add(new int[] {suffix.get(k), suffixTypes.get(k)});
        }
        return build(template, trim(tokens.subList(0, kept)), List.of(), tokenString);
    }

    /**
     * A (first, second) pair as `enable_truncation(max_length, stride, strategy="only_second")` encodes it: the
     * second text cut into windows that overlap by `stride` tokens, each after the whole first text.
     */
    List<SpanEncoding> pair(List<Pipeline.Token> first, List<Pipeline.Token> second, int maxLength, int stride,
            java.util.function.IntFunction<String> tokenString) {
        if (pair.isEmpty()) {
            throw new IllegalArgumentException("this tokenizer's post-processor has no pair template");
        }
        int added = 0;
        for (int[] item : pair) {
            added += item[0] >= 0 ? 1 : 0;
        }
        int room = maxLength - added;
        List<List<Pipeline.Token>> windows = new ArrayList<>();
        if (first.size() + second.size() <= room) {
            windows.add(second);
        } else {
            int toRemove = first.size() + second.size() - room;
            if (second.size() <= toRemove) {
                throw new IllegalArgumentException("the question is too long for max_length " + maxLength + ": shorten it");
            }
            int max = second.size() - toRemove;
            if (stride >= max) {
                throw new IllegalArgumentException("stride " + stride + " must be below the " + max + " context tokens a window holds");
            }
            for (int start = 0; ; start += max - stride) {
                int stop = Math.min(start + max, second.size());
                windows.add(second.subList(start, stop));
                if (stop == second.size()) {
                    break;
                }
            }
        }
        List<Pipeline.Token> a = trim(first);
        List<SpanEncoding> out = new ArrayList<>();
        for (List<Pipeline.Token> window : windows) {
            out.add(build(pair, a, trim(window), tokenString));
        }
        return out;
    }

    /** ByteLevel / RoBERTa trim_offsets: offsets leave out the spaces at either end of a token. */
    private List<Pipeline.Token> trim(List<Pipeline.Token> tokens) {
        if (!trimOffsets) {
            return tokens;
        }
        List<Pipeline.Token> out = new ArrayList<>();
        for (int i = 0; i < tokens.size(); i++) {
            Pipeline.Token t = tokens.get(i);
            String v = t.value;
            int lead = 0;
            while (lead < v.length() && isSpace(v.charAt(lead))) {
                lead++;
            }
            int trail = 0;
            while (trail < v.length() && isSpace(v.charAt(v.length() - 1 - trail))) {
                trail++;
            }
            int start = t.start;
            int end = t.end;
            if (lead > 0) {
                boolean first = i == 0 || start == 0;
                if (!(first && trimPrefixSpace && lead == 1)) {
                    start = Math.min(start + lead, end);
                }
            }
            if (trail > 0 && end >= trail) {
                end = Math.max(end - trail, start);
            }
            out.add(new Pipeline.Token(t.id, t.value, start, end, t.word));
        }
        return out;
    }

    private static boolean isSpace(char c) {
        return c == '\u0120' || Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    private static SpanEncoding build(List<int[]> template, List<Pipeline.Token> a, List<Pipeline.Token> b,
            java.util.function.IntFunction<String> tokenString) {
        int n = 0;
        for (int[] item : template) {
            n += item[0] == -1 ? a.size() : item[0] == -2 ? b.size() : 1;
        }
        long[] ids = new long[n];
        long[] types = new long[n];
        String[] tokens = new String[n];
        int[][] offsets = new int[n][];
        int[] special = new int[n];
        int[] sequence = new int[n];
        int[] words = new int[n];
        int i = 0;
        for (int[] item : template) {
            if (item[0] >= 0) {
                ids[i] = item[0];
                types[i] = item[1];
                tokens[i] = tokenString.apply(item[0]);
                offsets[i] = new int[] {0, 0};
                special[i] = 1;
                sequence[i] = -1;
                words[i] = -1;
                i++;
                continue;
            }
            for (Pipeline.Token t : item[0] == -1 ? a : b) {
                ids[i] = t.id;
                types[i] = item[1];
                tokens[i] = t.value;
                offsets[i] = new int[] {t.start, t.end};
                sequence[i] = item[0] == -1 ? 0 : 1;
                words[i] = t.word;
                i++;
            }
        }
        return new SpanEncoding(ids, types, tokens, offsets, special, sequence, words);
    }
}
