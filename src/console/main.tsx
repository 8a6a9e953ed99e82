// The web console's entry point: served by cfgd at /ui/, it talks to cfgd only through the public
// REST API, with the token of whoever signs in.
import { render } from 'preact';
import { App } from './app.js';
import './styles.css';

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
