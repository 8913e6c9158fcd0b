// The demo app: compiled only on iOS/macOS in Xcode (see ../README.md), not by `swift build` on Linux.
import SwiftUI

@main
struct BMSDKDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
