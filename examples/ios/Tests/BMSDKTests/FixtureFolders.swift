import Foundation

/// The test folders holding `file`: the committed ones under Fixtures/, then those of `BMSDK_VECTORS_DIR`
/// (tests/devices/test_ios_swift.py writes them from freshly converted models), each root sorted by path.
func fixtureFolders(containing file: String) throws -> [URL] {
    var roots: [URL] = []
    if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { roots.append(bundled) }
    if let extra = ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] { roots.append(URL(fileURLWithPath: extra)) }
    return try roots.flatMap { root in
        try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent(file).path) }
            .sorted { $0.path < $1.path }
    }
}

/// A JSON file of a test folder as a dictionary.
func fixtureJSON(_ folder: URL, _ file: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent(file))) as! [String: Any]
}
