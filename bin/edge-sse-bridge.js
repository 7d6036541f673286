#!/usr/bin/env node
import '../dist/bridge-cli.js';
