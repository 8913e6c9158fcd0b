import BMSDK
import SwiftUI

/// Runs the demo's two CoreML artifacts, bundled as folder references:
/// `minilm-sentiment-coreml-fp16.bmsdk` (type a sentence) and `mnist-cnn-coreml-fp16.bmsdk` (step through the
/// test digits in `mnist-vectors.json`, written by `bmsdk export-vectors`). Shows the label, score and latency.
struct ContentView: View {
    @State private var text = "What a wonderful day to ship a model"
    @State private var sentiment = "–"
    @State private var digitIndex = 0
    @State private var digit = "–"
    @State private var error: String?

    private let sentimentModel = Result { try BMSDKModel(folder: bundled("minilm-sentiment-coreml-fp16.bmsdk")) }
    private let digitModel = Result { try BMSDKModel(folder: bundled("mnist-cnn-coreml-fp16.bmsdk")) }
    private let digits = (try? loadDigits()) ?? []

    var body: some View {
        Form {
            Section("Sentiment (MiniLM, CoreML fp16)") {
                TextField("Text", text: $text, axis: .vertical)
                Button("Classify") { classifyText() }
                Text(sentiment).font(.body.monospaced())
            }
            Section("Digit (MNIST CNN, CoreML fp16)") {
                if digits.indices.contains(digitIndex) {
                    DigitView(pixels: digits[digitIndex]).frame(width: 112, height: 112)
                }
                Button("Classify next test digit") { classifyDigit() }
                Text(digit).font(.body.monospaced())
            }
            if let error { Section("Error") { Text(error).foregroundStyle(.red) } }
        }
    }

    private func classifyText() {
        do {
            let (p, ms) = try sentimentModel.get().predict(text: text)
            sentiment = String(format: "%@  %.3f  (%.2f ms)", p.label, p.score, ms)
        } catch { self.error = "\(error)" }
    }

    private func classifyDigit() {
        guard !digits.isEmpty else { error = "mnist-vectors.json is not in the app bundle"; return }
        digitIndex = (digitIndex + 1) % digits.count
        do {
            let (p, ms) = try digitModel.get().predict(pixels: digits[digitIndex])
            digit = String(format: "%@  %.3f  (%.2f ms)", p.label, p.score, ms)
        } catch { self.error = "\(error)" }
    }
}

/// A 28x28 grey digit drawn as squares.
struct DigitView: View {
    let pixels: [UInt8]

    var body: some View {
        Canvas { context, size in
            let cell = size.width / 28
            for y in 0..<28 {
                for x in 0..<28 {
                    let v = Double(pixels[y * 28 + x]) / 255
                    context.fill(Path(CGRect(x: Double(x) * cell, y: Double(y) * cell, width: cell, height: cell)),
                                 with: .color(Color(white: v)))
                }
            }
        }
    }
}

private func bundled(_ name: String) -> URL {
    Bundle.main.resourceURL!.appendingPathComponent(name)
}

/// The raw test digits (28x28x1 bytes each) from `bmsdk export-vectors mnist-cnn-coreml-fp16.bmsdk`.
private func loadDigits() throws -> [[UInt8]] {
    let data = try Data(contentsOf: bundled("mnist-vectors.json"))
    let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    let cases = json?["cases"] as? [[String: Any]] ?? []
    return cases.compactMap { c in
        (c["pixels_hwc"] as? [[[NSNumber]]])?.flatMap { row in row.flatMap { $0.map(\.uint8Value) } }
    }
}
