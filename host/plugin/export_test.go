package plugin

// Instrument is instrument, for the tests of package plugin_test, which
// build real modules with testenv (a package that plugin's own tests
// cannot import without a cycle through the SDK builds).
var Instrument = instrument
