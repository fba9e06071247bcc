/** What nginx logs and the metrics count for a client that left before its response was complete */
export const CLIENT_CLOSED_REQUEST = 499
