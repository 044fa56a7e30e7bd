import { runImageTask } from './task.js';

// The image pool's worker entry (piscina calls the default export once per task).
export default runImageTask;
