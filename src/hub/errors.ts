import { ModelLoadError } from '../model/model-dir.js';

/** A model that could not be fetched or found in the cache; a ModelLoadError so the CLI prints it as one line. */
export class ModelFetchError extends ModelLoadError {}
