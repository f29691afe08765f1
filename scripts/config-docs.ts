/** Prints the Markdown table of every config key (for the README): node dist/scripts/config-docs.js */
import { renderConfigDocs } from '../config/docs.js';

process.stdout.write(renderConfigDocs());
