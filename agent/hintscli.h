/*
 * hintscli: "tocsin-agent hints", the hints this agent received, for a
 * person or a script (see hintscli.c).
 */
#ifndef AGENT_HINTSCLI_H
#define AGENT_HINTSCLI_H

/*
 * argv[0] is "hints". default_config is used without -c. Returns the
 * process exit status (0, 1 error, 2 usage).
 */
int hintscli_main(int argc, char **argv, const char *default_config);

#endif
