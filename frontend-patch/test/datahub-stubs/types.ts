// Stand-in for DataHub's generated `@types` (src/types.generated.ts): only the enum members the tests use.
export enum EntityType {
    Dataset = 'DATASET',
    Dashboard = 'DASHBOARD',
    DataJob = 'DATA_JOB',
}
