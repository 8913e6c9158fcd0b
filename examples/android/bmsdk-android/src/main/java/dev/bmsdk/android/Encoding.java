package dev.bmsdk.android;

import java.util.Arrays;

/** The model inputs of one text: token ids, attention mask (all 1: no padding) and token type ids. */
public final class Encoding {
    public final long[] ids;
    public final long[] attentionMask;
    public final long[] typeIds;

    Encoding(long[] ids, long[] typeIds) {
        this.ids = ids;
        this.typeIds = typeIds;
        this.attentionMask = new long[ids.length];
        Arrays.fill(attentionMask, 1L);
    }
}
