// The chart's pod securityContext (charts/tokenplace-relay/values.yaml) in podman's words, for the
// two harnesses that run the relay's image: the container check (scripts/container-smoke.ts) and the
// Pi-sized benchmark (bench/pi.ts). One list, so both measure and check the same pod.

/** runAsUser/runAsGroup 1000, capabilities drop ALL, allowPrivilegeEscalation false; /tmp is the chart's emptyDir. */
export const HARDENED = ['--cap-drop', 'ALL', '--user', '1000:1000', '--security-opt', 'no-new-privileges', '--tmpfs', '/tmp']

/** readOnlyRootFilesystem: true (apart so a check can run the image writable and look at what it wrote). */
export const READ_ONLY = ['--read-only']

/** How long a relay container gets to be ready: podman's own start-up comes before the relay's. */
export const CONTAINER_READY_TIMEOUT_MS = 30_000
