/*
 * testrules: the "tocsin-agent test-rules" subcommand (see testrules.c):
 * show, line by line, which rule matches a log file and what event it
 * would send, without touching the spool or the network.
 */
#ifndef AGENT_TESTRULES_H
#define AGENT_TESTRULES_H

/*
 * argv[0] is "test-rules". default_config is used without -c. Returns
 * the process exit status.
 */
int testrules_main(int argc, char **argv, const char *default_config);

#endif
