/* `meshlet controller` (the fleet protocol): a small fleet controller in the same binary, for a
 * small fleet and for tests.
 *
 *   meshlet controller --listen HOST:PORT --configs DIR [--cert FILE --key FILE [--ca FILE]]
 *                      [--state DIR] [--stages LIST] [--soak D] [--stale D]
 *
 * New versions roll out in stages and halt on the first Nack; POST /rollback, GET /metrics,
 * GET /fleet/status (runtime/fleet/README.md, "Rollouts", "Seeing the fleet").
 *
 * Serves DIR/NODE_ID.ini, else DIR/label=KEY=VALUE.ini, else DIR/default.ini, to each node that
 * connects (WebSocket, subprotocol meshlet.fleet.v1; TLS with --cert/--key, client certificates
 * required to chain to --ca), versioned by the first 16 hex digits of the file's SHA-256; pushes
 * again when a file changes, never a version a node nacked; GET /fleet shows every node as JSON,
 * GET /stats what was refused or ignored. With --ca, a node's id must be the one its certificate
 * names; one connection per id (runtime/fleet/README.md, "meshlet controller"). */
#ifndef ML_CONTROLLER_CONTROLLER_H
#define ML_CONTROLLER_CONTROLLER_H

/* argv[0] is "controller". Runs until SIGINT/SIGTERM: 0; 64 (EX_USAGE) for bad arguments (usage on
 * stderr); 3 when it cannot start (the reason on stderr). */
int ml_controller_main(int argc, char **argv);
/* `meshlet fleet status|rollback --controller URL` (status_cli.c); argv[0] is "fleet". */
int ml_fleet_cli_main(int argc, char **argv);

#endif
