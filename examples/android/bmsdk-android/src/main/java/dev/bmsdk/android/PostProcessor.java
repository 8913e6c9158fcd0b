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
                break;  // adjusts offsets only
            case "BertProcessing":
            case "RobertaProcessing":
                prefix.add((int) Json.number(Json.array(p.get("cls")).get(1)));
                prefixTypes.add(0);
                suffix.add((int) Json.number(Json.array(p.get("sep")).get(1)));
                suffixTypes.add(0);
                break;
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
}
