package dev.bmsdk.android;

import java.util.Arrays;

/**
 * One encoded text (or one window of a question + context pair) with what span tasks read besides the ids, as
 * Hugging Face's Encoding holds it: token strings, character offsets into the text (code points, [start, end);
 * special tokens [0, 0]), the special-tokens mask, sequence ids (-1 special, 0 first text, 1 second) and word ids
 * (-1 for special tokens).
 */
public final class SpanEncoding {
    public final long[] ids;
    public final long[] typeIds;
    public final long[] attentionMask;
    public final String[] tokens;
    public final int[][] offsets;
    public final int[] special;
    public final int[] sequenceIds;
    public final int[] wordIds;

    SpanEncoding(long[] ids, long[] typeIds, String[] tokens, int[][] offsets, int[] special, int[] sequenceIds, int[] wordIds) {
        this.ids = ids;
        this.typeIds = typeIds;
        this.tokens = tokens;
        this.offsets = offsets;
        this.special = special;
        this.sequenceIds = sequenceIds;
        this.wordIds = wordIds;
        this.attentionMask = new long[ids.length];
        Arrays.fill(attentionMask, 1L);
    }

    /** The model inputs alone. */
    public Encoding encoding() {
        return new Encoding(ids, typeIds);
    }

    /** The characters [start, end) of word `word` of sequence `sequence` within this encoding, or null if absent. */
    public int[] wordToChars(int word, int sequence) {
        int first = -1;
        int last = -1;
        for (int i = 0; i < ids.length; i++) {
            if (wordIds[i] == word && sequenceIds[i] == sequence) {
                if (first < 0) {
                    first = i;
                }
                last = i;
            }
        }
        return first < 0 ? null : new int[] {offsets[first][0], offsets[last][1]};
    }
}
