// Everything that draws for a person, loaded only by human runs: a JSON run never pays for
// chalk, the spinner or the table renderer.
export { DiagnoseView } from './diagnose-view.js';
export { MitigationView, beforeAfter, stillUnhealthy } from './mitigation-view.js';
export { makeStyle, transcriptText } from './render.js';
