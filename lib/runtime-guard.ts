import { assertNodeFitsMikroOrm } from './mikro-orm-version';

// Imported first by the package's entry point, so the check runs before any MikroORM or driver code loads.
assertNodeFitsMikroOrm();
