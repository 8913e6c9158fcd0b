package dev.bmsdk.demo;

import android.app.Activity;
import android.os.Bundle;
import android.widget.Button;
import android.widget.EditText;
import android.widget.LinearLayout;
import android.widget.TextView;

import dev.bmsdk.android.Classifier;
import dev.bmsdk.android.Json;
import dev.bmsdk.android.Manifest;
import dev.bmsdk.android.Prediction;
import dev.bmsdk.android.litert.LiteRtRunner;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Runs the demo's two TFLite artifacts (copied into assets/ by prepare-assets.sh): the MiniLM sentiment classifier
 * on typed text, and the MNIST CNN on the test digits stored in its vectors.json; shows label, score and latency.
 */
public class MainActivity extends Activity {
    private static final String SENTIMENT = "minilm-sentiment";
    private static final String MNIST = "mnist-cnn";

    private Classifier sentiment;
    private Classifier mnist;
    private List<Object> digits;
    private int nextDigit;
    private TextView result;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        LinearLayout layout = new LinearLayout(this);
        layout.setOrientation(LinearLayout.VERTICAL);
        layout.setPadding(32, 32, 32, 32);
        EditText text = new EditText(this);
        text.setText("What a wonderful day to ship a model");
        Button classifyText = new Button(this);
        classifyText.setText("Sentiment");
        Button classifyDigit = new Button(this);
        classifyDigit.setText("Next MNIST digit");
        result = new TextView(this);
        result.setTextSize(18);
        layout.addView(text);
        layout.addView(classifyText);
        layout.addView(classifyDigit);
        layout.addView(result);
        setContentView(layout);
        try {
            sentiment = open(SENTIMENT, true);
            mnist = open(MNIST, false);
            digits = Json.array(Json.object(Json.parse(asset(MNIST + "/vectors.json"))).get("cases"));
        } catch (IOException | RuntimeException e) {
            result.setText("could not load the models: " + e.getMessage() + "\nRun examples/android/prepare-assets.sh first.");
            return;
        }
        classifyText.setOnClickListener(v -> show(text.getText().toString(), () -> sentiment.classifyText(text.getText().toString())));
        classifyDigit.setOnClickListener(v -> {
            Map<String, Object> kase = Json.object(digits.get(nextDigit++ % digits.size()));
            int[] pixels = flatten(kase.get("pixels_hwc"));
            String expected = (String) Json.object(kase.get("prediction")).get("label");
            show("digit (source model says " + expected + ")", () -> mnist.classifyImage(pixels));
        });
    }

    private interface Call {
        Prediction run();
    }

    private void show(String what, Call call) {
        call.run();  // warm-up (first call allocates tensors)
        long start = System.nanoTime();
        Prediction p = call.run();
        double ms = (System.nanoTime() - start) / 1e6;
        result.setText(String.format("%s\n→ %s  (score %.3f)\nlatency %.2f ms", what, p.label, p.score, ms));
    }

    private Classifier open(String name, boolean text) throws IOException {
        Manifest manifest = new Manifest(asset(name + "/bmsdk.json"));
        File model = copyAsset(name + "/" + manifest.modelFile);
        String tokenizer = text ? asset(name + "/tokenizer/tokenizer.json") : null;
        return new Classifier(manifest, tokenizer, new LiteRtRunner(model, 2));
    }

    private String asset(String path) throws IOException {
        try (InputStream in = getAssets().open(path)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            copy(in, bytes);
            return new String(bytes.toByteArray(), StandardCharsets.UTF_8);
        }
    }

    private File copyAsset(String path) throws IOException {
        File out = new File(getFilesDir(), path);
        out.getParentFile().mkdirs();
        try (InputStream in = getAssets().open(path); OutputStream o = new FileOutputStream(out)) {
            copy(in, o);
        }
        return out;
    }

    private static void copy(InputStream in, OutputStream out) throws IOException {  // readAllBytes needs API 33
        byte[] buffer = new byte[1 << 16];
        for (int n; (n = in.read(buffer)) > 0; ) {
            out.write(buffer, 0, n);
        }
    }

    private static int[] flatten(Object nested) {
        java.util.ArrayList<Integer> values = new java.util.ArrayList<>();
        collect(nested, values);
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = values.get(i);
        }
        return out;
    }

    private static void collect(Object value, java.util.List<Integer> out) {
        if (value instanceof List) {
            for (Object v : (List<?>) value) {
                collect(v, out);
            }
        } else {
            out.add((int) Json.number(value));
        }
    }

    @Override
    protected void onDestroy() {
        if (sentiment != null) {
            sentiment.close();
        }
        if (mnist != null) {
            mnist.close();
        }
        super.onDestroy();
    }
}
