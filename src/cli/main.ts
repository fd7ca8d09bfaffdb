console.log('lifeboat: work in progress');
