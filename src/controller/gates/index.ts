// Gates: judging runs by pass criteria (upgrade gates, the run gate metric) and the HTTP gate endpoints.
export { defaultGateCriteria, judgeRun, type GateJudgement } from './criteria.ts';
export { clusterGate, criteriaOf, gateAttributes, GateQueryError, gatesHandler, runGate, type GateAnswer, type GateLookup } from './http.ts';
