#ifndef ALBD_AGENT_CLI_H
#define ALBD_AGENT_CLI_H

/* Parses the command line and runs the chosen command; returns the exit
 * status (see DESIGN.md "Processes, interfaces, files"). */
int ag_cli_main(int argc, char **argv);

#endif
