// The raw-socket HTTP client and the SSE client live in harness/ (the benchmark and the container
// check speak the same HTTP); the tests import them from here.
export { parseResponse, rawRequest, readUntilClose, type RawResponse } from '../../harness/raw-http.js'
export { openStream, type Stream } from '../../harness/sse.js'
